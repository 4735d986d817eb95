package broker_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// TestReceiveLimits sends messages over the frame-count and total-size
// limits from both sides: each is dropped by reason as it arrives (zmqx
// proves nothing is copied), nothing is answered, the worker stays
// registered and calls keep working.
func TestReceiveLimits(t *testing.T) {
	for _, tr := range []gatetest.Transport{gatetest.Inproc, gatetest.TCP} {
		t.Run(tr.Name, func(t *testing.T) {
			// Sending 200,000 frames keeps the raw worker from answering
			// heartbeats for a while: liveness far away.
			h := gatetest.StartBrokerOn(t, tr, broker.WithMaxMsgSize(64<<10), broker.WithMaxFrames(32), broker.WithLiveness(1000))
			w := readyWorker(t, h, "S", 4)
			bad := h.RawClient(t)
			e := []byte{}
			// 10 frames of 60 KiB: each under the per-frame cap, 600 KiB in all.
			frame := bytes.Repeat([]byte{'x'}, 60<<10)
			big := [][]byte{e, []byte("MDPC01"), []byte("S"), []byte("r")}
			for range 10 {
				big = append(big, frame)
			}
			bad.Send(big...)
			many := make([][]byte, 200000) // empty frames
			for i := range many {
				many[i] = e
			}
			bad.Send(many...)
			reply := wire.WorkerMessage{Command: wire.CmdReply, Client: []byte("c"), RequestID: []byte("r"),
				Body: [][]byte{e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e}}.Frames()
			w.Send(reply...)
			waitStats(t, h, "drops by reason", func(st broker.Stats) bool {
				return st.Drops["frontend/oversize"] == 1 && st.Drops["frontend/too_many_frames"] == 1 &&
					st.Drops["backend/too_many_frames"] == 1
			})
			bad.Sync()
			h.Served(t, w, "S")
			if st := stats(h); st.Workers != 1 || len(st.Drops) != 3 {
				t.Fatalf("stats after the limits: workers %d, drops %v", st.Workers, st.Drops)
			}
		})
	}
}

// getServices calls Gate.get_services with a raw client.
func getServices(t *testing.T, h *gatetest.Harness) []string {
	t.Helper()
	c := h.RawClient(t)
	c.Request(wire.InternalService, rid(9999), call(t, "get_services")...)
	rep := c.NextReply(recvTimeout)
	var m struct {
		Result []string `msgpack:"result"`
	}
	if err := msgpack.Unmarshal(rep.Body[0], &m); err != nil {
		t.Fatalf("get_services reply %x: %v", rep.Body[0], err)
	}
	return m.Result
}

func wantDisconnect(t *testing.T, w *gatetest.RawWorker, what string) {
	t.Helper()
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdDisconnect {
		t.Fatalf("%s: got %v, %v; want DISCONNECT", what, m.Command, err)
	}
}

// TestRegistryBounded: READY name and description caps, the capacity
// clamp (no gauge overflow), the service cap, and a full registry making
// room by forgetting a service without workers.
func TestRegistryBounded(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithReadyLimits(16, 32), broker.WithMaxCapacity(100),
		broker.WithMaxServices(2), broker.WithServicePrune(-1))
	long := h.RawWorker(t)
	long.Ready(strings.Repeat("n", 17), "d", 1)
	wantDisconnect(t, long, "17-byte name")
	desc := h.RawWorker(t)
	desc.Ready("N", strings.Repeat("d", 33), 1)
	wantDisconnect(t, desc, "33-byte description")

	huge := int(^uint(0) >> 1) // 2^63-1
	readyWorker(t, h, "A", huge)
	readyWorker(t, h, "A", huge)
	if s := serviceStats(t, h, "A"); s.Capacity != 200 {
		t.Fatalf("capacity of two clamped workers = %d, want 200", s.Capacity)
	}
	b := readyWorker(t, h, "B", 1)
	c := h.RawWorker(t)
	c.Ready("C", "c", 1)
	wantDisconnect(t, c, "a third service while two have workers")
	st := stats(h)
	for k, want := range map[string]uint64{"backend/ready_name_too_long": 1, "backend/ready_description_too_long": 1,
		"backend/capacity_clamped": 2, "backend/too_many_services": 1} {
		if st.Drops[k] != want {
			t.Errorf("Drops[%q] = %d, want %d (all %v)", k, st.Drops[k], want, st.Drops)
		}
	}
	// B's worker leaves: B is kept (no pruning here) until C needs room.
	b.Disconnect([]byte("bye"))
	waitStats(t, h, "B without workers", func(st broker.Stats) bool { return st.Workers == 2 })
	if got := getServices(t, h); strings.Join(got, ",") != "A,B,Gate" {
		t.Fatalf("get_services = %v, want [A B Gate]", got)
	}
	readyWorker(t, h, "C", 1)
	if got := getServices(t, h); strings.Join(got, ",") != "A,C,Gate" {
		t.Fatalf("get_services = %v, want [A C Gate]", got)
	}
	if st := stats(h); st.ServicesPruned != 1 || len(st.Services) != 2 {
		t.Fatalf("after C: pruned %d, services %+v", st.ServicesPruned, st.Services)
	}
}

// TestServicePruned: a service is forgotten once its last worker has been
// gone for the prune delay, and comes back with a new worker.
func TestServicePruned(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithServicePrune(time.Millisecond))
	w := readyWorker(t, h, "P", 1)
	readyWorker(t, h, "Q", 1)
	w.Disconnect([]byte("bye"))
	waitStats(t, h, "P pruned", func(st broker.Stats) bool { return st.ServicesPruned == 1 && len(st.Services) == 1 })
	if got := getServices(t, h); strings.Join(got, ",") != "Q,Gate" {
		t.Fatalf("get_services = %v, want [Q Gate]", got)
	}
	readyWorker(t, h, "P", 1)
	if got := getServices(t, h); strings.Join(got, ",") != "Q,P,Gate" {
		t.Fatalf("get_services = %v, want [Q P Gate]", got)
	}
}

// TestSilentWorkerOutOfRotation: next to a healthy worker, a worker that
// registered and then went silent (it never answers the heartbeat probe)
// gets no new work; when both are unavailable requests queue; once it
// speaks again it is back in rotation.
func TestSilentWorkerOutOfRotation(t *testing.T) {
	// Liveness far away: only the silence rule can keep work off it.
	h := gatetest.StartBroker(t, broker.WithLiveness(1000))
	silent := readyWorker(t, h, "S", 10)
	healthy := readyWorker(t, h, "S", 1)
	silent.AutoHeartbeat = false
	for deadline := time.Now().Add(recvTimeout); serviceStats(t, h, "S").Stalled != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the silent worker was never taken out of rotation")
		}
		// pump the healthy worker's heartbeats meanwhile
		if _, err := healthy.NextMessage(10 * time.Millisecond); err == nil {
			t.Fatal("healthy worker got work before any call")
		}
	}
	c := h.RawClient(t)
	const calls = 20
	for i := range calls {
		c.Request("S", rid(i), call(t, "f", i)...)
		req := healthy.NextRequest(recvTimeout)
		healthy.Reply(req.Client, req.RequestID, result(t, i))
		if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(i)) {
			t.Fatalf("reply for %q, want %q", rep.RequestID, rid(i))
		}
	}
	// healthy busy, silent stalled: the next request waits in the queue.
	c.Request("S", rid(100), call(t, "hold")...)
	held := healthy.NextRequest(recvTimeout)
	c.Request("S", rid(101), call(t, "waits")...)
	waitStats(t, h, "queued", func(broker.Stats) bool { return serviceStats(t, h, "S").Queued == 1 })
	// The silent worker saw heartbeats only.
	for {
		msg, err := silent.Recv(0)
		if errors.Is(err, gatetest.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m, err := wire.ParseWorkerMessage(msg); err != nil || m.Command != wire.CmdHeartbeat {
			t.Fatalf("silent worker got %s (%v), want heartbeats only", gatetest.Dump(msg), err)
		}
	}
	silent.Heartbeat() // it speaks: back in rotation, takes the queued request
	req := silent.NextRequest(recvTimeout)
	if !bytes.Equal(req.RequestID, rid(101)) {
		t.Fatalf("silent worker got %q, want %q", req.RequestID, rid(101))
	}
	silent.Reply(req.Client, req.RequestID, result(t, 101))
	healthy.Reply(held.Client, held.RequestID, result(t, 100))
	for range 2 {
		c.NextReply(recvTimeout)
	}
	if st := stats(h); st.Outcomes["dispatched"] != calls+2 || st.Workers != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBrokerRestartWorkerReregisters: a gate worker whose broker died
// without a word (its socket closed, no DISCONNECT) and came back on the
// same endpoint registers with the new broker at once: the new broker
// answers the worker's heartbeat with DISCONNECT and the worker connects
// again. The worker's own liveness timer is set to 100,000 heartbeats, so
// only that path can make it register within the test's bound.
func TestBrokerRestartWorkerReregisters(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zctx.SetRetryAfterEINTR(false); _ = zctx.Term() })
	// The old broker: a bare ROUTER that takes the worker's READY.
	old, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	backend, _ := old.GetLastEndpoint()

	svc, err := gate.NewService("R", "restart")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Register("ping", func(context.Context) (string, error) { return "pong", nil }); err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWorker(backend, gate.WithZMQContext(zctx), gate.WithLogger(gatetest.TestLogger(t)),
		gate.WithHeartbeat(50*time.Millisecond), gate.WithLiveness(100000))
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)

	poller := zmq.NewPoller()
	poller.Add(old, zmq.POLLIN)
	for ready := false; !ready; {
		if p, err := poller.Poll(gatetest.RecvTimeout); err != nil || len(p) == 0 {
			t.Fatalf("old broker: no READY (%v)", err)
		}
		msg, err := zmqx.RecvMessage(old)
		if err != nil {
			continue
		}
		_, rest, _ := wire.SplitRouting(msg)
		m, err := wire.ParseWorkerMessage(rest)
		ready = err == nil && m.Command == wire.CmdReady
	}
	_ = old.SetLinger(0)
	old.Close() // killed: no DISCONNECT
	// libzmq closes the listener on its I/O thread: wait until the port
	// is free (a Go listener closes synchronously).
	addr := strings.TrimPrefix(backend, "tcp://")
	gatetest.WaitFor(t, gatetest.TestTimeout, "the old backend port to be free", func() bool {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
		}
		return err == nil
	})

	h := gatetest.StartBrokerOn(t, gatetest.Transport{Name: "restart", Endpoints: func(testing.TB) (string, string) {
		return zmqx.UniqueInproc("restart-front"), backend
	}}, broker.WithZMQContext(zctx))
	st := waitStats(t, h, "the worker registered with the new broker", func(st broker.Stats) bool { return st.Workers == 1 })
	if st.Drops["backend/unknown_worker"] == 0 {
		t.Fatalf("worker registered without being told DISCONNECT first: %v", st.Drops)
	}
	c := gatetest.Dial(t, zctx, h.Frontend, gatetest.NewID("c"))
	c.Send(wire.ClientRequest{Service: "R", RequestID: rid(1), Body: call(t, "ping")}.Frames()...)
	rep, err := wire.ParseClientReply(c.MustRecv(recvTimeout))
	if err != nil || !bytes.Equal(rep.Body[0], result(t, "pong")) {
		t.Fatalf("call through the new broker: %+v, %v", rep, err)
	}
}
