package broker_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

func TestRoundTripMatrix(t *testing.T) {
	for _, tr := range gatetest.Endpoints(t) {
		t.Run(tr.Name, func(t *testing.T) {
			h := gatetest.StartBrokerOn(t, tr)
			w := readyWorker(t, h, "Echo", 5)
			c := h.RawClient(t)
			body := call(t, "echo", "a", 1)
			c.Request("Echo", rid(1), body...)
			req := w.NextRequest(recvTimeout)
			if !bytes.Equal(req.Client, c.ID) || !bytes.Equal(req.RequestID, rid(1)) {
				t.Fatalf("REQUEST client=%q rid=%q, want %q %q", req.Client, req.RequestID, c.ID, rid(1))
			}
			if len(req.Body) != 3 || !bytes.Equal(req.Body[0], body[0]) || !bytes.Equal(req.Body[1], body[1]) {
				t.Fatalf("REQUEST body %s, want %s", gatetest.Dump(req.Body), gatetest.Dump(body))
			}
			w.Reply(req.Client, req.RequestID, result(t, "ok"))
			rep := c.NextReply(recvTimeout)
			if rep.Service != "Echo" || !bytes.Equal(rep.RequestID, rid(1)) || !bytes.Equal(rep.Body[0], result(t, "ok")) {
				t.Fatalf("reply %+v", rep)
			}
			st := stats(h)
			if st.InFlight != 0 || st.Outcomes["dispatched"] != 1 || st.Workers != 1 {
				t.Fatalf("stats after call: %+v", st)
			}
		})
	}
}

func TestInterleavedServices(t *testing.T) {
	h := gatetest.StartBroker(t)
	wa1 := readyWorker(t, h, "A", 10)
	wa2 := readyWorker(t, h, "A", 10)
	wb := readyWorker(t, h, "B", 10)
	c := h.RawClient(t)
	const n = 12
	for i := range n {
		svc := "A"
		if i%3 == 2 {
			svc = "B"
		}
		c.Request(svc, rid(i), call(t, "f", i)...)
	}
	// A's 8 requests are spread round-robin over its two workers.
	got := map[string]int{}
	serve := func(w *gatetest.RawWorker, want int, svc string) {
		var reqs []wire.WorkerMessage
		for range want {
			reqs = append(reqs, w.NextRequest(recvTimeout))
		}
		for i := len(reqs) - 1; i >= 0; i-- { // answer in reverse order
			w.Reply(reqs[i].Client, reqs[i].RequestID, result(t, svc+string(reqs[i].RequestID)))
		}
	}
	serve(wa1, 4, "A")
	serve(wa2, 4, "A")
	serve(wb, 4, "B")
	for range n {
		rep := c.NextReply(recvTimeout)
		if !bytes.Equal(rep.Body[0], result(t, rep.Service+string(rep.RequestID))) {
			t.Fatalf("reply for %s/%s carries %x", rep.Service, rep.RequestID, rep.Body[0])
		}
		got[rep.Service]++
	}
	if got["A"] != 8 || got["B"] != 4 {
		t.Fatalf("replies per service %v, want A:8 B:4", got)
	}
}

func TestCapacityQueuesInOrder(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "One", 1)
	c := h.RawClient(t)
	for i := range 3 {
		c.Request("One", rid(i), call(t, "f")...)
	}
	waitStats(t, h, "two queued", func(st broker.Stats) bool {
		return len(st.Services) == 1 && st.Services[0].Queued == 2 && st.Services[0].InFlight == 1
	})
	if s := serviceStats(t, h, "One"); s.Workers["full"] != 1 || s.OldestQueue <= 0 {
		t.Fatalf("service stats %+v", s)
	}
	for i := range 3 {
		req := w.NextRequest(recvTimeout)
		if !bytes.Equal(req.RequestID, rid(i)) {
			t.Fatalf("request %d has id %q, want %q", i, req.RequestID, rid(i))
		}
		// capacity 1: nothing else may arrive before the reply.
		w.ExpectQuiet(1)
		w.Reply(req.Client, req.RequestID, result(t, i))
		if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(i)) {
			t.Fatalf("reply %d for %q", i, rep.RequestID)
		}
	}
}

func TestStreamReleasesCapacityOnce(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "S", 1)
	c := h.RawClient(t)
	c.Request("S", rid(1), call(t, "gen")...)
	c.Request("S", rid(2), call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	for i := range 3 {
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
	}
	// items do not release capacity (quirk 10 fixed)
	for i := range 3 { // the broker has handled the items
		if kind, _ := wire.ClassifyReply(c.NextReply(recvTimeout).Body); kind != wire.ReplyStreamItem {
			t.Fatalf("reply %d kind %v, want %v", i, kind, wire.ReplyStreamItem)
		}
	}
	w.ExpectQuiet(2)
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	req2 := w.NextRequest(recvTimeout)
	if !bytes.Equal(req2.RequestID, rid(2)) {
		t.Fatalf("second request id %q", req2.RequestID)
	}
	if kind, _ := wire.ClassifyReply(c.NextReply(recvTimeout).Body); kind != wire.ReplyStreamEnd {
		t.Fatalf("last reply kind %v, want %v", kind, wire.ReplyStreamEnd)
	}
}

func TestQueueTimeoutBusy(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithQueueTimeout(150*time.Millisecond))
	w := readyWorker(t, h, "Slow", 1)
	c := h.RawClient(t)
	c.Request("Slow", rid(1), call(t, "f")...)
	w.NextRequest(recvTimeout)
	start := time.Now()
	c.Request("Slow", rid(2), call(t, "f")...)
	rep := c.NextReply(recvTimeout)
	if d := since(start); d < 140*time.Millisecond || d > 2*time.Second {
		t.Fatalf("BusyWorkerError after %v, want about 150ms", d)
	}
	if !bytes.Equal(rep.RequestID, rid(2)) {
		t.Fatalf("busy reply for %q", rep.RequestID)
	}
	wantException(t, rep, "BusyWorkerError", "BusyWorkerError('No idle worker.')")
	if st := stats(h); st.Outcomes["expired"] != 1 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
}

func TestQueueFull(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithQueueLimit(1))
	readyWorker(t, h, "Busy", 0) // capacity 0: registered, never served
	c := h.RawClient(t)
	c.Request("Busy", rid(1), call(t, "f")...)
	c.Request("Busy", rid(2), call(t, "f")...)
	rep := c.NextReply(recvTimeout)
	if !bytes.Equal(rep.RequestID, rid(2)) {
		t.Fatalf("first reply for %q, want the rejected rid-0002", rep.RequestID)
	}
	wantException(t, rep, "BusyWorkerError", "BusyWorkerError('No idle worker.')")
	if st := stats(h); st.Outcomes["rejected_full"] != 1 || st.Services[0].Queued != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnknownService(t *testing.T) {
	h := gatetest.StartBroker(t)
	c := h.RawClient(t)
	c.Request("Nope", rid(1), call(t, "f")...)
	rep := c.NextReply(recvTimeout)
	if rep.Service != "Nope" {
		t.Fatalf("service frame %q", rep.Service)
	}
	wantException(t, rep, "ServiceUnAvailableError", "ServiceUnAvailableError('The Nope Service unavailable.')")
}

func TestHeartbeatAndExpiry(t *testing.T) {
	const hb = 100 * time.Millisecond
	h := gatetest.StartBroker(t, broker.WithHeartbeat(hb), broker.WithLiveness(3))
	live := readyWorker(t, h, "Live", 1)
	dead := readyWorker(t, h, "Dead", 1)
	start := time.Now()
	// dead stops answering; it must be disconnected within one interval
	// after hb*liveness. live answers heartbeats and stays registered.
	pump := func(d time.Duration) {
		if _, err := live.NextMessage(d); err != nil && !errors.Is(err, gatetest.ErrTimeout) {
			t.Fatal(err)
		}
	}
	for {
		pump(2 * time.Millisecond)
		msg, err := dead.Recv(2 * time.Millisecond)
		if errors.Is(err, gatetest.ErrTimeout) {
			if since(start) > recvTimeout {
				t.Fatal("dead worker never disconnected")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, _ := wire.ParseWorkerMessage(msg)
		if m.Command == wire.CmdDisconnect {
			break
		}
		if m.Command != wire.CmdHeartbeat {
			t.Fatalf("dead worker got %v", m.Command)
		}
	}
	// lower bound: liveness × interval; upper: one check interval later,
	// plus slack for loaded CI machines.
	if d := since(start); d < 3*hb-10*time.Millisecond || d > 4*hb+300*time.Millisecond {
		t.Fatalf("expired after %v, want within [%v, %v]", d, 3*hb, 4*hb)
	}
	for deadline := time.Now().Add(8 * hb); time.Now().Before(deadline); {
		pump(time.Until(deadline))
	}
	st := stats(h)
	if st.Expirations["heartbeat"] != 1 || st.Workers != 1 || live.Heartbeats < 4 {
		t.Fatalf("expirations %v workers %d heartbeats seen by live worker %d", st.Expirations, st.Workers, live.Heartbeats)
	}
	if st.HeartbeatsReceived < 4 || st.HeartbeatsSent < 6 {
		t.Fatalf("heartbeats sent %d received %d", st.HeartbeatsSent, st.HeartbeatsReceived)
	}
	// a request for the expired worker's service now fails at once.
	c := h.RawClient(t)
	c.Request("Dead", rid(1), call(t, "f")...)
	wantException(t, c.NextReply(recvTimeout), "ServiceUnAvailableError", "")
}

func TestWorkerLost(t *testing.T) {
	tests := []struct {
		name   string
		stream bool
		kill   func(w *gatetest.RawWorker)
	}{
		{"disconnect", false, func(w *gatetest.RawWorker) { w.Disconnect([]byte("bye")) }},
		{"disconnect_no_frame", false, func(w *gatetest.RawWorker) { w.Disconnect() }},
		{"duplicate_ready", false, func(w *gatetest.RawWorker) { w.Ready("W", "again", 1) }},
		{"expiry", false, func(w *gatetest.RawWorker) { w.Close() }},
		{"stream_disconnect", true, func(w *gatetest.RawWorker) { w.Disconnect([]byte("bye")) }},
		{"stream_expiry", true, func(w *gatetest.RawWorker) { w.Close() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := gatetest.StartBroker(t, broker.WithHeartbeat(30*time.Millisecond))
			w := readyWorker(t, h, "W", 2)
			c := h.RawClient(t)
			c.Request("W", rid(1), call(t, "f")...)
			req := w.NextRequest(recvTimeout)
			if tc.stream {
				w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, 1))...)
				if k, _ := wire.ClassifyReply(c.NextReply(recvTimeout).Body); k != wire.ReplyStreamItem {
					t.Fatalf("first reply kind %v", k)
				}
			}
			tc.kill(w)
			rep := c.NextReply(recvTimeout)
			if !bytes.Equal(rep.RequestID, rid(1)) {
				t.Fatalf("error reply for %q", rep.RequestID)
			}
			if tc.stream {
				kind, payload := wire.ClassifyReply(rep.Body)
				if kind != wire.ReplyStreamError {
					t.Fatalf("stream error reply kind %v: %s", kind, gatetest.Dump(rep.Body))
				}
				if !bytes.Contains(payload, []byte("WorkerLostError")) {
					t.Fatalf("stream error payload %q", payload)
				}
			} else {
				wantException(t, rep, "WorkerLostError", "WorkerLostError('worker lost while serving W')")
			}
			st := waitStats(t, h, "worker gone", func(st broker.Stats) bool { return st.Workers == 0 })
			if st.Outcomes["worker_lost"] != 1 || st.InFlight != 0 {
				t.Fatalf("stats %+v", st)
			}
			// no new work for the dead worker: the service is unavailable.
			c.Request("W", rid(2), call(t, "f")...)
			wantException(t, c.NextReply(recvTimeout), "ServiceUnAvailableError", "")
		})
	}
}

func TestDuplicateReadyBans(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "Raw", 2)
	w.Ready("Raw", "raw test service", 2)
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdDisconnect {
		t.Fatalf("after duplicate READY got %v, %v; want DISCONNECT", m.Command, err)
	}
	st := waitStats(t, h, "ban", func(st broker.Stats) bool { return st.Workers == 0 })
	if st.Expirations["duplicate_ready"] != 1 {
		t.Fatalf("expirations %v", st.Expirations)
	}
}

func TestReservedServiceName(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := h.RawWorker(t)
	w.Ready("Gate", "impostor", 5)
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdDisconnect {
		t.Fatalf("READY Gate: got %v, %v; want DISCONNECT", m.Command, err)
	}
	if st := stats(h); st.Workers != 0 || st.Drops["backend/reserved_service"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStrayWorkerMessages: a worker the broker does not know gets
// DISCONNECT for a HEARTBEAT or a REPLY (MDP; 0.2.12 stays silent, spec
// 3.6), so that it registers again at once, once per heartbeat interval
// (its other stale messages are only dropped); its DISCONNECT is not
// answered.
func TestStrayWorkerMessages(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := h.RawWorker(t)
	w.Heartbeat()
	w.Reply([]byte("nobody"), []byte("r"), result(t, 1))
	w.Disconnect([]byte("bye"))
	st := waitStats(t, h, "drops", func(st broker.Stats) bool { return st.Drops["backend/unknown_worker"] == 3 })
	_ = st
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdDisconnect {
		t.Fatalf("answer to a stranger: %v, %v; want DISCONNECT", m.Command, err)
	}
	w.ExpectEmpty() // told once; its DISCONNECT is not answered (inproc: a complete check)
	// a registered worker replying for an unknown request
	w2 := readyWorker(t, h, "X", 1)
	w2.Reply([]byte("nobody"), []byte("r"), result(t, 1))
	waitStats(t, h, "unknown request drop", func(st broker.Stats) bool { return st.Drops["backend/unknown_request"] == 1 })
}

func TestCloseIdempotent(t *testing.T) {
	h := gatetest.StartBroker(t)
	for range 3 {
		if err := h.Broker.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
	// Close waited for Serve; the harness cleanup checks its result.
	if err := h.Broker.Serve(context.Background()); !errors.Is(err, gate.ErrClosed) {
		t.Fatalf("second Serve = %v, want ErrClosed", err)
	}
	_ = h.Broker.Stats() // must not hang
}

func TestCloseBeforeServe(t *testing.T) {
	b, err := broker.New(broker.WithFrontend(zmqx.UniqueInproc("a")), broker.WithBackend(zmqx.UniqueInproc("b")))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := b.Serve(context.Background()); !errors.Is(err, gate.ErrClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
}

func TestServeContextCancel(t *testing.T) {
	b, err := broker.New(broker.WithFrontend("tcp://127.0.0.1:0"), broker.WithBackend("tcp://127.0.0.1:0"), broker.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(ctx) }()
	actx, acancel := context.WithTimeout(context.Background(), recvTimeout)
	defer acancel()
	if _, _, err := b.Addrs(actx); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve = %v, want context.Canceled", err)
		}
	case <-time.After(recvTimeout):
		t.Fatal("Serve did not return after ctx cancel")
	}
}

func TestShutdownDrains(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithHeartbeat(time.Second))
	w := readyWorker(t, h, "D", 1)
	c := h.RawClient(t)
	c.Request("D", rid(1), call(t, "f")...)
	req := w.NextRequest(recvTimeout)
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	go func() { done <- h.Broker.Shutdown(ctx) }()
	// new requests are refused while draining
	gatetest.WaitFor(t, recvTimeout, "refusal", func() bool {
		c.Request("D", rid(2), call(t, "f")...)
		rep, err := c.Recv(50 * time.Millisecond)
		if err != nil {
			return false
		}
		r, _ := wire.ParseClientReply(rep)
		c, _ := exception(t, r.Body)
		return c == "ServiceUnAvailableError"
	})
	w.Reply(req.Client, req.RequestID, result(t, "late"))
	for {
		rep := c.NextReply(recvTimeout)
		if bytes.Equal(rep.RequestID, rid(1)) {
			if !bytes.Equal(rep.Body[0], result(t, "late")) {
				t.Fatalf("drained reply %x", rep.Body[0])
			}
			break
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(recvTimeout):
		t.Fatal("Shutdown did not return")
	}
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdDisconnect {
		t.Fatalf("worker got %v, %v after shutdown; want DISCONNECT", m.Command, err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "D", 1)
	c := h.RawClient(t)
	c.Request("D", rid(1), call(t, "f")...)
	w.NextRequest(recvTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.Broker.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	// the request still in flight is failed on close
	wantException(t, c.NextReply(recvTimeout), "ServiceUnAvailableError", "")
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opt  broker.Option
	}{
		{"negative heartbeat", broker.WithHeartbeat(-1)},
		{"tiny heartbeat", broker.WithHeartbeat(time.Microsecond)},
		{"negative liveness", broker.WithLiveness(-1)},
		{"negative queue limit", broker.WithQueueLimit(-1)},
		{"negative queue timeout", broker.WithQueueTimeout(-1)},
		{"bad max msg size", broker.WithMaxMsgSize(-2)},
		{"negative hwm", broker.WithHWM(-1)},
		{"short id", broker.WithID([]byte("short"))},
		{"same endpoints", broker.WithBackend(broker.DefaultFrontend)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := broker.New(tc.opt); !errors.Is(err, gate.ErrInvalidOption) {
				t.Fatalf("New = %v, want ErrInvalidOption", err)
			}
		})
	}
	if _, err := broker.New(nil, broker.WithHeartbeat(0), broker.WithLogger(nil), broker.WithID(nil)); err != nil {
		t.Fatalf("New with zero values = %v", err)
	}
}
