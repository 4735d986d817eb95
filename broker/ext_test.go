package broker_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

func TestCancel(t *testing.T) {
	h := gatetest.StartBroker(t)
	gw := readyWorker(t, h, "G", 1)
	gw.Heartbeat([]byte(wire.GateCapability))
	pw := readyWorker(t, h, "P", 1)
	c := h.RawClient(t)
	cancel := func(i int, id []byte) bool {
		t.Helper()
		c.Request(wire.InternalService, rid(1000+i), call(t, "cancel", id)...)
		for {
			rep := c.NextReply(recvTimeout)
			if rep.Service != "Gate" {
				t.Fatalf("unexpected reply %+v while waiting for cancel result", rep)
			}
			switch {
			case bytes.Equal(rep.Body[0], result(t, true)):
				return true
			case bytes.Equal(rep.Body[0], result(t, false)):
				return false
			}
			t.Fatalf("cancel reply %x", rep.Body[0])
		}
	}
	waitStats(t, h, "gate capability", func(st broker.Stats) bool { return st.HeartbeatsReceived >= 3 })

	// in flight on a gate worker: CANCEL goes to the worker, late replies are dropped
	c.Request("G", rid(1), call(t, "slow")...)
	req := gw.NextRequest(recvTimeout)
	c.Request("G", rid(2), call(t, "next")...) // queued behind rid 1
	waitStats(t, h, "queued", func(st broker.Stats) bool { return serviceStats(t, h, "G").Queued == 1 })
	if !cancel(1, rid(1)) {
		t.Fatal("cancel of in-flight request on gate worker = false")
	}
	m, err := gw.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdCancel || !bytes.Equal(m.Client, c.ID) || !bytes.Equal(m.RequestID, req.RequestID) {
		t.Fatalf("worker got %+v, %v; want CANCEL for rid-0001", m, err)
	}
	// capacity came back: the queued request is dispatched
	req2 := gw.NextRequest(recvTimeout)
	if !bytes.Equal(req2.RequestID, rid(2)) {
		t.Fatalf("next request %q", req2.RequestID)
	}
	gw.Reply(req.Client, req.RequestID, result(t, "late")) // dropped
	waitStats(t, h, "late reply dropped", func(st broker.Stats) bool { return st.Drops["backend/unknown_request"] == 1 })

	// queued: dropped silently
	c.Request("G", rid(3), call(t, "queued")...)
	waitStats(t, h, "queued", func(st broker.Stats) bool { return serviceStats(t, h, "G").Queued == 1 })
	if !cancel(3, rid(3)) {
		t.Fatal("cancel of queued request = false")
	}
	gw.Reply(req2.Client, req2.RequestID, result(t, 2))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(2)) {
		t.Fatalf("reply for %q, want rid-0002", rep.RequestID)
	}
	gw.ExpectNoWork(30 * time.Millisecond) // rid 3 never dispatched

	// in flight on a plain (Python) worker: cannot cancel
	c.Request("P", rid(4), call(t, "f")...)
	preq := pw.NextRequest(recvTimeout)
	if cancel(4, rid(4)) {
		t.Fatal("cancel on plain worker = true")
	}
	pw.Reply(preq.Client, preq.RequestID, result(t, 4))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(4)) {
		t.Fatalf("reply for %q", rep.RequestID)
	}
	if cancel(5, []byte("unknown")) {
		t.Fatal("cancel of unknown id = true")
	}
	if st := stats(h); st.Outcomes["cancelled"] != 2 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
}

func TestBudget(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "B", 1)
	c := h.RawClient(t)
	base := []byte("0123456789abcdef")
	ext := wire.EncodeRequestID(base, wire.RequestMeta{Budget: 5 * time.Second, MD: map[string]string{"traceparent": "00-x"}})
	c.Request("B", ext, call(t, "f")...)
	req := w.NextRequest(recvTimeout)
	gotBase, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil || !bytes.Equal(gotBase, base) || meta.MD["traceparent"] != "00-x" {
		t.Fatalf("worker request id %x: base %q meta %+v err %v", req.RequestID, gotBase, meta, err)
	}
	if meta.Budget <= 0 || meta.Budget > 5*time.Second {
		t.Fatalf("forwarded budget %v, want (0, 5s]", meta.Budget)
	}
	// queued with a short budget: TimeoutError, before the queue timeout
	short := wire.EncodeRequestID([]byte("short-base-id-01"), wire.RequestMeta{Budget: 100 * time.Millisecond})
	start := time.Now()
	c.Request("B", short, call(t, "f")...)
	rep := c.NextReply(recvTimeout)
	if !bytes.Equal(rep.RequestID, short) {
		t.Fatalf("reply for %x, want the original extended id", rep.RequestID)
	}
	wantException(t, rep, "TimeoutError", "")
	if d := since(start); d < 90*time.Millisecond {
		t.Fatalf("timed out after %v", d)
	}
	// the reply to the first request carries the client's original id
	w.Reply(req.Client, req.RequestID, result(t, 1))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, ext) {
		t.Fatalf("reply id %x, want %x", rep.RequestID, ext)
	}
	if st := stats(h); st.Outcomes["timeout"] != 1 {
		t.Fatalf("outcomes %v", st.Outcomes)
	}
}

type mwLog struct {
	mu     sync.Mutex
	events []string
	errs   []error
	infos  []gate.Info
}

func (l *mwLog) add(s string) {
	l.mu.Lock()
	l.events = append(l.events, s)
	l.mu.Unlock()
}

func (l *mwLog) snapshot() ([]string, []error, []gate.Info) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...), append([]error(nil), l.errs...), append([]gate.Info(nil), l.infos...)
}

func TestMiddleware(t *testing.T) {
	log := &mwLog{}
	observe := func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			log.mu.Lock()
			log.infos = append(log.infos, req.Info())
			log.mu.Unlock()
			if req.Method == "refuse" {
				return gate.Errorf(gate.NotFound, "refused by middleware")
			}
			ctx = gate.WithDispatchHook(ctx, func(ctx context.Context, d *gate.Dispatch) {
				d.Metadata["traceparent"] = "00-dispatch"
				log.add("dispatch " + d.Service)
			})
			err := next.ServeRPC(ctx, req, gate.ReplyWriterFunc(func(ctx context.Context, r *gate.Reply) error {
				log.add("reply " + r.Kind.String())
				return w.Send(ctx, r)
			}))
			log.mu.Lock()
			log.errs = append(log.errs, err)
			log.mu.Unlock()
			return err
		})
	}
	h := gatetest.StartBroker(t, broker.WithMiddleware(observe))
	w := readyWorker(t, h, "M", 2)
	c := h.RawClient(t)

	// single reply; the hook's metadata reaches the worker
	id := wire.EncodeRequestID([]byte("base-000000000001"), wire.RequestMeta{MD: map[string]string{"baggage": "k=v"}})
	c.Request("M", id, call(t, "echo")...)
	req := w.NextRequest(recvTimeout)
	_, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil || meta.MD["traceparent"] != "00-dispatch" || meta.MD["baggage"] != "k=v" {
		t.Fatalf("worker metadata %v (%v), want traceparent from the hook and baggage from the client", meta.MD, err)
	}
	w.Reply(req.Client, req.RequestID, result(t, "hi"))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, id) || !bytes.Equal(rep.Body[0], result(t, "hi")) {
		t.Fatalf("reply %+v", rep)
	}
	// The loop relays replies itself; the chain observes them after the
	// client may already have them, so let it finish before the next one.
	waitStats(t, h, "handler done", func(st broker.Stats) bool { return st.Handlers == 0 })

	// stream through the chain, in order
	c.Request("M", rid(2), call(t, "gen")...)
	req = w.NextRequest(recvTimeout)
	for i := range 3 {
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
	}
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	for i := range 4 {
		rep := c.NextReply(recvTimeout)
		kind, payload := wire.ClassifyReply(rep.Body)
		if i < 3 && (kind != wire.ReplyStreamItem || !bytes.Equal(payload, mp(t, i))) || i == 3 && kind != wire.ReplyStreamEnd {
			t.Fatalf("stream message %d: %v %x", i, kind, payload)
		}
	}
	waitStats(t, h, "handler done", func(st broker.Stats) bool { return st.Handlers == 0 })

	// broker-generated error: unknown service
	c.Request("Nope", rid(3), call(t, "f")...)
	wantException(t, c.NextReply(recvTimeout), "ServiceUnAvailableError", "")

	// middleware refusing without calling next
	c.Request("M", rid(4), call(t, "refuse")...)
	wantException(t, c.NextReply(recvTimeout), "NotFoundError", "NotFoundError('refused by middleware')")

	// worker lost mid-request
	c.Request("M", rid(5), call(t, "f")...)
	w.NextRequest(recvTimeout)
	w.Disconnect([]byte("bye"))
	wantException(t, c.NextReply(recvTimeout), "WorkerLostError", "")

	st := waitStats(t, h, "handlers done", func(st broker.Stats) bool { return st.Handlers == 0 })
	if st.Requests != 0 {
		t.Fatalf("live requests %d", st.Requests)
	}
	events, errs, infos := log.snapshot()
	want := []string{
		"dispatch M", "reply single",
		"dispatch M", "reply stream_item", "reply stream_item", "reply stream_item", "reply stream_end",
		"dispatch M",
	}
	if len(events) != len(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %q, want %q", events, want)
		}
	}
	if len(infos) != 5 || infos[0].Role != gate.RoleBroker || infos[0].FullMethod() != "M/echo" || infos[2].FullMethod() != "Nope/f" {
		t.Fatalf("infos %+v", infos)
	}
	wantCodes := []gate.Code{gate.OK, gate.OK, gate.Unavailable, gate.Unavailable}
	if len(errs) != len(wantCodes) {
		t.Fatalf("errs %v", errs)
	}
	for i, code := range wantCodes {
		if gate.CodeOf(errs[i]) != code {
			t.Fatalf("outcome %d = %v (%v), want %v", i, gate.CodeOf(errs[i]), errs[i], code)
		}
	}
}

func TestMiddlewareContextEnds(t *testing.T) {
	// a request whose caller budget ends while it runs: the chain returns
	// DeadlineExceeded and the request is forgotten.
	var got error
	var mu sync.Mutex
	mw := func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			err := next.ServeRPC(ctx, req, w)
			mu.Lock()
			got = err
			mu.Unlock()
			return err
		})
	}
	h := gatetest.StartBroker(t, broker.WithMiddleware(mw))
	w := readyWorker(t, h, "M", 1)
	c := h.RawClient(t)
	id := wire.EncodeRequestID([]byte("base-000000000002"), wire.RequestMeta{Budget: 80 * time.Millisecond})
	c.Request("M", id, call(t, "slow")...)
	req := w.NextRequest(recvTimeout)
	waitStats(t, h, "request abandoned", func(st broker.Stats) bool { return st.Handlers == 0 && st.Requests == 0 })
	mu.Lock()
	err := got
	mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("chain returned %v, want DeadlineExceeded", err)
	}
	// the plain worker still holds the capacity until its final reply,
	// which is not relayed.
	if s := serviceStats(t, h, "M"); s.InFlight != 1 {
		t.Fatalf("in flight %d, want 1", s.InFlight)
	}
	w.Reply(req.Client, req.RequestID, result(t, "late"))
	waitStats(t, h, "capacity back", func(st broker.Stats) bool { return st.InFlight == 0 })
	c.ExpectNothing(30 * time.Millisecond)
}
