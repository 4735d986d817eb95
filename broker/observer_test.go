package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// recObserver records what the broker shows it, one line per call, keyed
// by method. It sets "traceparent" in the dispatched metadata, and skips
// requests for method "unseen" (Observe returns nil).
type recObserver struct {
	mu     sync.Mutex
	events []string
	early  []time.Time // arrival times given to Observe
}

func (o *recObserver) add(format string, args ...any) {
	o.mu.Lock()
	o.events = append(o.events, fmt.Sprintf(format, args...))
	o.mu.Unlock()
}

func (o *recObserver) snapshot() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}

func (o *recObserver) Observe(req *gate.Request, arrived time.Time) broker.RequestObserver {
	if req.Method == "unseen" {
		return nil
	}
	o.mu.Lock()
	o.early = append(o.early, arrived)
	o.mu.Unlock()
	o.add("observe %s role=%s baggage=%q", req.Info().FullMethod(), req.Info().Role, req.Metadata["baggage"])
	return &recRequest{o: o, method: req.Method}
}

type recRequest struct {
	o        *recObserver
	method   string
	finished int
}

func (r *recRequest) Dispatch(d *broker.Dispatch) {
	r.o.add("%s dispatch %s hook=%q", r.method, d.Service, d.Metadata["traceparent"])
	if d.Assigned.Before(d.Enqueued) {
		r.o.add("%s dispatch assigned before enqueued", r.method)
	}
	d.Metadata["traceparent"] = "00-observer"
}

func (r *recRequest) Reply(rep *gate.Reply) { r.o.add("%s reply %s", r.method, rep.Kind) }

func (r *recRequest) Finish(_ time.Time, outcome string, err error) {
	r.finished++
	r.o.add("%s finish %s %s #%d", r.method, outcome, gate.CodeOf(err), r.finished)
}

func TestObserver(t *testing.T) {
	obs := &recObserver{}
	h := gatetest.StartBroker(t, broker.WithObserver(obs))
	w := readyWorker(t, h, "M", 2)
	c := h.RawClient(t)

	// A single reply; the observer's metadata reaches the worker beside
	// the client's, and the client gets its own request id back.
	id := wire.EncodeRequestID([]byte("base-000000000001"), wire.RequestMeta{MD: map[string]string{"baggage": "k=v"}})
	c.Request("M", id, call(t, "echo")...)
	req := w.NextRequest(recvTimeout)
	_, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil || meta.MD["traceparent"] != "00-observer" || meta.MD["baggage"] != "k=v" {
		t.Fatalf("worker metadata %v (%v), want traceparent from the observer and baggage from the client", meta.MD, err)
	}
	w.Reply(req.Client, req.RequestID, result(t, "hi"))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, id) || !bytes.Equal(rep.Body[0], result(t, "hi")) {
		t.Fatalf("reply %+v", rep)
	}

	// A plain (gaterpc 0.2.12) request id: the worker gets an extended one
	// carrying the observer's metadata, the client its plain one.
	c.Request("M", rid(2), call(t, "plain")...)
	req = w.NextRequest(recvTimeout)
	if base, meta, err := wire.DecodeRequestID(req.RequestID); err != nil || !bytes.Equal(base, rid(2)) || meta.MD["traceparent"] != "00-observer" {
		t.Fatalf("worker request id %q: base %q, metadata %v, %v", req.RequestID, base, meta.MD, err)
	}
	w.Reply(req.Client, req.RequestID, result(t, 1))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(2)) {
		t.Fatalf("reply id %q, want %q", rep.RequestID, rid(2))
	}

	// A stream, then a remote exception, an unobserved request, an
	// unknown service, an internal call and a lost worker.
	c.Request("M", rid(3), call(t, "gen")...)
	req = w.NextRequest(recvTimeout)
	w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, 0))...)
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	c.NextReply(recvTimeout)
	c.NextReply(recvTimeout)

	c.Request("M", rid(4), call(t, "raise")...)
	req = w.NextRequest(recvTimeout)
	w.Reply(req.Client, req.RequestID, wire.SingleBody(exceptionBody(t, "ValueError", "ValueError('x')"))...)
	wantException(t, c.NextReply(recvTimeout), "ValueError", "ValueError('x')")

	c.Request("M", rid(5), call(t, "unseen")...)
	req = w.NextRequest(recvTimeout)
	if _, meta, _ := wire.DecodeRequestID(req.RequestID); meta.MD["traceparent"] != "" {
		t.Errorf("unobserved request carries metadata %v", meta.MD)
	}
	w.Reply(req.Client, req.RequestID, result(t, 1))
	c.NextReply(recvTimeout)

	c.Request("Nope", rid(6), call(t, "f")...)
	wantException(t, c.NextReply(recvTimeout), "ServiceUnAvailableError", "")

	c.Request(wire.InternalService, rid(7), call(t, "services")...)
	c.NextReply(recvTimeout)

	c.Request("M", rid(8), call(t, "lost")...)
	w.NextRequest(recvTimeout)
	w.Disconnect([]byte("bye"))
	wantException(t, c.NextReply(recvTimeout), "WorkerLostError", "")

	waitStats(t, h, "requests done", func(st broker.Stats) bool { return st.Requests == 0 })
	want := []string{
		`observe M/echo role=broker baggage="k=v"`, `echo dispatch M hook=""`, "echo reply single", "echo finish ok OK #1",
		`observe M/plain role=broker baggage=""`, `plain dispatch M hook=""`, "plain reply single", "plain finish ok OK #1",
		`observe M/gen role=broker baggage=""`, `gen dispatch M hook=""`, "gen reply stream_item", "gen reply stream_end", "gen finish ok OK #1",
		`observe M/raise role=broker baggage=""`, `raise dispatch M hook=""`, "raise reply single", "raise finish error OK #1",
		`observe Nope/f role=broker baggage=""`, "f finish no_service UNAVAILABLE #1",
		`observe M/lost role=broker baggage=""`, `lost dispatch M hook=""`, "lost finish worker_lost UNAVAILABLE #1",
	}
	if got := obs.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("events:\n%q\nwant:\n%q", got, want)
	}
}

// TestObserversInOrder installs several observers: each request goes to
// each of them in order (the later sees the metadata the earlier set at
// dispatch), and an event-only observer beside them gets the events.
func TestObserversInOrder(t *testing.T) {
	first, second, events := &recObserver{}, &recObserver{}, &eventLog{}
	h := gatetest.StartBroker(t, broker.WithObserver(first, events, second))
	w := readyWorker(t, h, "M", 1)
	c := h.RawClient(t)
	for i := range 2 { // the second waits in the queue: dispatch on assignment
		c.Request("M", rid(i), call(t, "echo")...)
	}
	for range 2 {
		req := w.NextRequest(recvTimeout)
		if _, meta, _ := wire.DecodeRequestID(req.RequestID); meta.MD["traceparent"] != "00-observer" {
			t.Errorf("worker metadata %v, want the observers' traceparent", meta.MD)
		}
		w.Reply(req.Client, req.RequestID, result(t, 1))
	}
	c.NextReply(recvTimeout)
	c.NextReply(recvTimeout)
	waitStats(t, h, "requests done", func(st broker.Stats) bool { return st.Requests == 0 })
	one := []string{`observe M/echo role=broker baggage=""`, `echo dispatch M hook=""`, "echo reply single", "echo finish ok OK #1"}
	two := []string{`observe M/echo role=broker baggage=""`, `echo dispatch M hook="00-observer"`, "echo reply single", "echo finish ok OK #1"}
	// Requests interleave: the second arrives before the first ends.
	wantFirst := []string{one[0], one[1], one[0], one[2], one[3], one[1], one[2], one[3]}
	wantSecond := []string{two[0], two[1], two[0], two[2], two[3], two[1], two[2], two[3]}
	if got := first.snapshot(); !slices.Equal(got, wantFirst) {
		t.Errorf("first observer:\n%q\nwant:\n%q", got, wantFirst)
	}
	if got := second.snapshot(); !slices.Equal(got, wantSecond) {
		t.Errorf("second observer:\n%q\nwant:\n%q", got, wantSecond)
	}
	events.mu.Lock()
	defer events.mu.Unlock()
	if n := len(events.events); n < 9 || events.events[0] != "worker_ready M" {
		t.Errorf("event observer saw %q", events.events)
	}
}

func TestWithObserverNil(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithObserver(nil, nil))
	w := readyWorker(t, h, "M", 1)
	c := h.RawClient(t)
	c.Request("M", rid(1), call(t, "echo")...)
	req := w.NextRequest(recvTimeout)
	if !bytes.Equal(req.RequestID, rid(1)) {
		t.Errorf("worker request id %q, want the client's %q untouched", req.RequestID, rid(1))
	}
}

// exceptionBody is a single reply body carrying a remote exception.
func exceptionBody(t testing.TB, class, repr string) []byte {
	t.Helper()
	return mp(t, map[string]any{"result": nil, "exception": []any{class, repr, ""}})
}
