package broker_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// streamReader checks that a client receives one stream in order: items
// 0, 1, 2, ... and then the end or an error marker.
type streamReader struct {
	t    testing.TB
	c    *gatetest.RawClient
	rid  []byte
	next int    // next item expected
	done bool   // end or error marker seen
	err  []byte // error marker payload
}

// poll handles every reply available within wait.
func (s *streamReader) poll(wait time.Duration) {
	s.t.Helper()
	for !s.done {
		frames, err := s.c.Recv(wait)
		if errors.Is(err, gatetest.ErrTimeout) {
			return
		}
		if err != nil {
			s.t.Fatalf("client: %v", err)
		}
		wait = 0
		rep, err := wire.ParseClientReply(frames)
		if err != nil {
			s.t.Fatalf("client: bad reply %s: %v", gatetest.Dump(frames), err)
		}
		if !bytes.Equal(rep.RequestID, s.rid) {
			s.t.Fatalf("reply for %q, want %q", rep.RequestID, s.rid)
		}
		kind, payload := wire.ClassifyReply(rep.Body)
		switch kind {
		case wire.ReplyStreamItem:
			var got int
			if err := msgpack.Unmarshal(payload, &got); err != nil || got != s.next {
				s.t.Fatalf("stream item %d (%v) after %d items: items went missing", got, err, s.next)
			}
			s.next++
		case wire.ReplyStreamEnd:
			s.done = true
		case wire.ReplyStreamError:
			s.done, s.err = true, payload
		default:
			s.t.Fatalf("reply kind %v after %d items: %s", kind, s.next, gatetest.Dump(rep.Body))
		}
	}
}

// finish reads until the end or error marker, failing after timeout.
func (s *streamReader) finish(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !s.done {
		if time.Now().After(deadline) {
			s.t.Fatalf("stream not finished after %d items: the rest went missing", s.next)
		}
		s.poll(10 * time.Millisecond)
	}
}

// pump answers broker heartbeats on w for up to d.
func pump(t testing.TB, w *gatetest.RawWorker, d time.Duration) {
	t.Helper()
	if m, err := w.NextMessage(d); err == nil {
		t.Fatalf("worker %s: unexpected %v", w.ID, m.Command)
	} else if !errors.Is(err, gatetest.ErrTimeout) {
		t.Fatal(err)
	}
}

// TestBusyLoopKeepsTalkingWorkers is the regression test for healthy
// workers expired under load: the loop is slowed down (1 ms per relayed
// reply, as under -race on two cores) so that relaying a stream keeps it
// busy for several heartbeat intervals. Neither the streaming worker nor
// an idle worker that answers every heartbeat may be expired.
func TestBusyLoopKeepsTalkingWorkers(t *testing.T) {
	// 1 ms per reply keeps the loop busy for at least 1.5 s, three
	// liveness windows of 500 ms (100 ms x 5: a loaded 2-core machine
	// delays the test's own heartbeat answers by tens of ms).
	const hb, items = 100 * time.Millisecond, 1500
	h := gatetest.StartBroker(t, broker.WithHeartbeat(hb), broker.WithLiveness(5),
		broker.WithObserver(slowReplies{}))
	idle := readyWorker(t, h, "Idle", 1)
	w := readyWorker(t, h, "S", 1)
	c := h.RawClient(t)
	c.Request("S", rid(1), call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	for i := range items {
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
	}
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	s := &streamReader{t: t, c: c, rid: rid(1)}
	for deadline := time.Now().Add(gatetest.TestTimeout); !s.done; {
		if time.Now().After(deadline) {
			t.Fatalf("stream not finished after %d items", s.next)
		}
		s.poll(time.Millisecond)
		pump(t, idle, time.Millisecond)
		pump(t, w, time.Millisecond)
	}
	if s.err != nil || s.next != items {
		t.Fatalf("stream ended after %d items with error %q", s.next, s.err)
	}
	st := stats(h)
	if len(st.Expirations) != 0 || st.Workers != 2 {
		t.Fatalf("expirations %v, workers %d: a talking worker was expired", st.Expirations, st.Workers)
	}
}

// TestLongStreamShortHeartbeat relays a 10,000-item stream with a 50 ms
// heartbeat while another worker only answers heartbeats: nothing is
// expired and every item arrives in order.
func TestLongStreamShortHeartbeat(t *testing.T) {
	// The peers answer heartbeats every 20 items; 300 ms of liveness leaves
	// room for a test goroutine descheduled on a loaded 2-core machine.
	const hb, items = 100 * time.Millisecond, 10000
	h := gatetest.StartBroker(t, broker.WithHeartbeat(hb), broker.WithLiveness(3))
	idle := readyWorker(t, h, "Idle", 1)
	w := readyWorker(t, h, "S", 1)
	c := h.RawClient(t)
	c.Request("S", rid(1), call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	s := &streamReader{t: t, c: c, rid: rid(1)}
	for i := range items {
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
		if i%20 == 19 {
			s.poll(0)
			pump(t, idle, 0)
			pump(t, w, 0)
		}
	}
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	for deadline := time.Now().Add(gatetest.TestTimeout); !s.done; {
		if time.Now().After(deadline) {
			t.Fatalf("stream not finished after %d items", s.next)
		}
		s.poll(time.Millisecond)
		pump(t, idle, time.Millisecond)
	}
	if s.err != nil || s.next != items {
		t.Fatalf("stream ended after %d items with error %q", s.next, s.err)
	}
	if st := stats(h); len(st.Expirations) != 0 || st.Workers != 2 {
		t.Fatalf("expirations %v, workers %d", st.Expirations, st.Workers)
	}
}

// slowClient connects a client whose pipe holds few messages.
func slowClient(t testing.TB, h *gatetest.Harness, hwm int) *gatetest.RawClient {
	t.Helper()
	return &gatetest.RawClient{RawPeer: gatetest.DialHWM(t, h.Ctx, h.Frontend, gatetest.NewID("slow"), hwm)}
}

// TestSlowClientGetsEveryItem is the regression test for stream items
// lost at the frontend HWM: the client stops reading while a worker
// streams far more than the high-water marks hold, then reads. Every item
// must arrive, in order.
func TestSlowClientGetsEveryItem(t *testing.T) {
	const hwm, items = 100, 2000
	for _, tr := range gatetest.Endpoints(t) {
		t.Run(tr.Name, func(t *testing.T) {
			h := gatetest.StartBrokerOn(t, tr, broker.WithHWM(hwm))
			w := readyWorker(t, h, "S", 1)
			c := slowClient(t, h, hwm)
			c.Request("S", rid(1), call(t, "gen")...)
			req := w.NextRequest(recvTimeout)
			for i := range items {
				w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
			}
			w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
			// the broker has taken everything before the client reads
			waitStats(t, h, "stream relayed or buffered", func(st broker.Stats) bool { return st.InFlight == 0 })
			s := &streamReader{t: t, c: c, rid: rid(1)}
			s.finish(recvTimeout)
			if s.err != nil || s.next != items {
				t.Fatalf("stream ended after %d of %d items with error %q", s.next, items, s.err)
			}
			st := waitStats(t, h, "overflow flushed", func(st broker.Stats) bool { return st.Buffered == 0 })
			if len(st.Drops) != 0 {
				t.Fatalf("drops %v", st.Drops)
			}
		})
	}
}

// TestSlowClientOverflowFails: a client that does not read past the
// overflow limit gets the items in order, then a BusyWorkerError in the
// stream's error marker; a gate worker is told to CANCEL, another worker
// keeps the capacity until its final reply.
func TestSlowClientOverflowFails(t *testing.T) {
	const hwm, limit, items = 100, 300, 2000
	for _, gateWorker := range []bool{true, false} {
		name := map[bool]string{true: "gate_worker", false: "plain_worker"}[gateWorker]
		t.Run(name, func(t *testing.T) {
			h := gatetest.StartBroker(t, broker.WithHWM(hwm), broker.WithPeerBuffer(limit, 0))
			w := readyWorker(t, h, "S", 1)
			if gateWorker {
				w.Heartbeat([]byte(wire.GateCapability))
			}
			c := slowClient(t, h, hwm)
			c.Request("S", rid(1), call(t, "gen")...)
			req := w.NextRequest(recvTimeout)
			for i := range items {
				w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
			}
			st := waitStats(t, h, "slow client failed", func(st broker.Stats) bool { return st.Outcomes[broker.OutcomeFull] == 1 })
			if st.Drops["frontend/client_slow"] == 0 {
				t.Fatalf("drops %v, want frontend/client_slow", st.Drops)
			}
			if gateWorker {
				msg, err := w.NextMessage(recvTimeout)
				if err != nil || msg.Command != wire.CmdCancel || !bytes.Equal(msg.RequestID, req.RequestID) {
					t.Fatalf("worker got %v %q (%v), want CANCEL for %q", msg.Command, msg.RequestID, err, req.RequestID)
				}
			}
			w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
			s := &streamReader{t: t, c: c, rid: rid(1)}
			s.finish(recvTimeout)
			if s.err == nil || !bytes.Contains(s.err, []byte("BusyWorkerError")) || !bytes.Contains(s.err, []byte("client too slow")) {
				t.Fatalf("stream ended after %d items with error %q, want BusyWorkerError", s.next, s.err)
			}
			if s.next < hwm {
				t.Fatalf("only %d items before the error marker", s.next)
			}
			c.Sync() // nothing after the error marker
			// the worker's capacity came back: a new call is served.
			c2 := h.RawClient(t)
			c2.Request("S", rid(2), call(t, "f")...)
			req2 := w.NextRequest(recvTimeout)
			w.Reply(req2.Client, req2.RequestID, result(t, "ok"))
			if rep := c2.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(2)) {
				t.Fatalf("reply for %q", rep.RequestID)
			}
		})
	}
}

// TestClientGoneCancels: when a client leaves mid-stream the broker
// notices (ROUTER_MANDATORY) and cancels the request at its gate worker.
func TestClientGoneCancels(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "S", 1)
	w.Heartbeat([]byte(wire.GateCapability))
	c := h.RawClient(t)
	c.Request("S", rid(1), call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	c.Close()
	deadline := time.Now().Add(recvTimeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("worker never got CANCEL")
		}
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
		m, err := w.NextMessage(time.Millisecond)
		if errors.Is(err, gatetest.ErrTimeout) {
			continue
		}
		if err != nil || m.Command != wire.CmdCancel || !bytes.Equal(m.RequestID, req.RequestID) {
			t.Fatalf("worker got %v %q (%v), want CANCEL", m.Command, m.RequestID, err)
		}
		break
	}
	st := waitStats(t, h, "request cancelled", func(st broker.Stats) bool { return st.Requests == 0 && st.InFlight == 0 })
	if st.Drops["frontend/client_gone"] == 0 || st.Outcomes[broker.OutcomeCancelled] != 1 {
		t.Fatalf("drops %v outcomes %v", st.Drops, st.Outcomes)
	}
}

// TestSlowWorkerGetsEveryRequest: REQUESTs for a worker that does not
// read wait in its overflow queue instead of being dropped at the HWM
// (and, once the worker has been silent for a heartbeat interval with its
// pipe full, in the service queue: docs/reliability.md), and reach it in
// order when it reads again.
func TestSlowWorkerGetsEveryRequest(t *testing.T) {
	const hwm, n = 100, 600
	h := gatetest.StartBroker(t, broker.WithHWM(hwm))
	w := &gatetest.RawWorker{RawPeer: gatetest.DialHWM(t, h.Ctx, h.Backend, gatetest.NewID("w"), hwm), AutoHeartbeat: true}
	w.Ready("W", "slow worker", n)
	waitStats(t, h, "worker ready", func(st broker.Stats) bool { return st.Workers == 1 })
	c := h.RawClient(t)
	for i := range n {
		c.Request("W", rid(i), call(t, "f")...)
	}
	waitStats(t, h, "all dispatched or queued", func(st broker.Stats) bool {
		return st.Requests == n && st.InFlight+serviceStats(t, h, "W").Queued == n
	})
	for i := range n {
		req := w.NextRequest(recvTimeout)
		if !bytes.Equal(req.RequestID, rid(i)) {
			t.Fatalf("request %d has id %q: requests went missing", i, req.RequestID)
		}
		w.Reply(req.Client, req.RequestID, result(t, i))
	}
	for i := range n {
		if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(i)) {
			t.Fatalf("reply %d for %q", i, rep.RequestID)
		}
	}
	if st := stats(h); len(st.Drops) != 0 || st.Buffered != 0 {
		t.Fatalf("drops %v buffered %d", st.Drops, st.Buffered)
	}
}

// slowReplies is an observer that takes 1 ms per relayed reply.
type slowReplies struct{}

func (slowReplies) Observe(*gate.Request, time.Time) broker.RequestObserver { return nil }
func (slowReplies) Event(ev *broker.Event) {
	if ev.Kind == broker.EventReply {
		time.Sleep(time.Millisecond)
	}
}
