package broker_test

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// gateStats asks the internal service for service_stats(names...) over a
// raw client and decodes the reply.
func gateStats(t *testing.T, c *gatetest.RawClient, id int, names ...any) []gate.ServiceStats {
	t.Helper()
	c.Request(wire.InternalService, rid(id), call(t, "service_stats", names...)...)
	rep := c.NextReply(recvTimeout)
	if string(rep.RequestID) != string(rid(id)) || len(rep.Body) != 1 {
		t.Fatalf("service_stats reply %s", gatetest.Dump(rep.Body))
	}
	var m struct {
		Result struct {
			Services []gate.ServiceStats `msgpack:"services"`
		} `msgpack:"result"`
		Exception any `msgpack:"exception"`
	}
	if err := msgpack.Unmarshal(rep.Body[0], &m); err != nil || m.Exception != nil {
		t.Fatalf("service_stats reply %x: %v, exception %v", rep.Body[0], err, m.Exception)
	}
	return m.Result.Services
}

// TestServiceStatsExtension: Gate.service_stats reports per service the
// capacity, in flight, queued and oldest queued age, the finished calls by
// outcome, and per worker its routing id, capacity, load and protocol.
func TestServiceStatsExtension(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "svc", 2)
	w.Heartbeat([]byte(wire.GateCapabilityAck))
	other := readyWorker(t, h, "other", 1)
	c := h.RawClient(t)

	for i := range 3 {
		c.Request("svc", rid(i), call(t, "f", i)...)
	}
	reqs := []wire.WorkerMessage{w.NextRequest(recvTimeout), w.NextRequest(recvTimeout)}
	waitStats(t, h, "third request queued", func(s broker.Stats) bool { return serviceStats(t, h, "svc").Queued == 1 })

	got := gateStats(t, c, 100)
	if len(got) != 2 || got[0].Name != "other" || got[1].Name != "svc" {
		t.Fatalf("service_stats() = %+v, want other and svc, sorted", got)
	}
	o, s := got[0], got[1]
	if s.Description != "svc service" || s.Capacity != 2 || s.InFlight != 2 || s.Queued != 1 || s.OldestQueuedSeconds <= 0 || s.Calls != 0 {
		t.Fatalf("svc = %+v, want capacity 2, 2 in flight, 1 queued with an age, no calls yet", s)
	}
	if len(s.Workers) != 1 {
		t.Fatalf("svc workers = %+v, want 1", s.Workers)
	}
	sw := s.Workers[0]
	if !bytes.Equal(sw.ID, w.ID) || sw.Capacity != 2 || sw.InFlight != 2 || sw.Protocol != wire.GateCapabilityAck || sw.Stalled || sw.Key != "" || sw.LastSeenSeconds < 0 {
		t.Fatalf("svc worker = %+v, want id %x, capacity 2, 2 in flight, gaterpc/2, not stalled, no key", sw, w.ID)
	}
	if len(o.Workers) != 1 || !bytes.Equal(o.Workers[0].ID, other.ID) || o.Workers[0].Protocol != "MDPW01" || o.InFlight != 0 || o.Queued != 0 || o.OldestQueuedSeconds != 0 {
		t.Fatalf("other = %+v, want one idle MDPW01 worker", o)
	}

	// One success, one remote exception, then the queued one succeeds.
	w.Reply(reqs[0].Client, reqs[0].RequestID, result(t, "ok"))
	w.Reply(reqs[1].Client, reqs[1].RequestID, mp(t, map[string]any{"result": nil, "exception": []string{"ValueError", "ValueError('x')", ""}}))
	third := w.NextRequest(recvTimeout)
	w.Reply(third.Client, third.RequestID, result(t, "ok"))
	for range 3 {
		c.NextReply(recvTimeout)
	}
	// A call to a service no worker ever served is not listed or counted.
	c.Request("ghost", rid(50), call(t, "f")...)
	c.NextReply(recvTimeout)

	got = gateStats(t, c, 101, "svc", "ghost", "svc")
	if len(got) != 1 || got[0].Name != "svc" {
		t.Fatalf(`service_stats("svc", "ghost", "svc") = %+v, want svc once`, got)
	}
	s = got[0]
	if s.Calls != 3 || s.Errors != 1 || s.Outcomes[broker.OutcomeOK] != 2 || s.Outcomes[broker.OutcomeError] != 1 || len(s.Outcomes) != 2 {
		t.Fatalf("svc calls %d errors %d outcomes %v, want 3, 1, {ok:2 error:1}", s.Calls, s.Errors, s.Outcomes)
	}
	if s.InFlight != 0 || s.Queued != 0 || s.OldestQueuedSeconds != 0 || s.Workers[0].InFlight != 0 {
		t.Fatalf("svc after the replies = %+v, want nothing in flight or queued", s)
	}
}

// TestServiceStatsBadArgs: non-str names get a TypeError; get_interfaces
// lists the internal service's functions, service_stats among them.
func TestServiceStatsBadArgs(t *testing.T) {
	h := gatetest.StartBroker(t)
	c := h.RawClient(t)
	c.Request(wire.InternalService, rid(1), call(t, "service_stats", 7)...)
	wantException(t, c.NextReply(recvTimeout), "TypeError", "")
	c.Request(wire.InternalService, rid(2), call(t, "get_interfaces", "x")...)
	wantException(t, c.NextReply(recvTimeout), "TypeError", "")

	c.Request(wire.InternalService, rid(3), call(t, "get_interfaces")...)
	rep := c.NextReply(recvTimeout)
	var m struct {
		Result map[string]gate.Interface `msgpack:"result"`
	}
	if err := msgpack.Unmarshal(rep.Body[0], &m); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"get_services", "query_service", "info", "keepalive", "cancel", "service_stats", "get_interfaces"} {
		if m.Result[fn].Signature == "" || m.Result[fn].Doc == "" {
			t.Errorf("get_interfaces lacks %s: %+v", fn, m.Result)
		}
	}
	if len(m.Result) != 7 {
		t.Errorf("get_interfaces = %d functions, want 7", len(m.Result))
	}
	// Every listed function answers (no AttributeError).
	for i, fn := range []string{"get_services", "info"} {
		c.Request(wire.InternalService, rid(10+i), call(t, fn)...)
		if cl, _ := exception(t, c.NextReply(recvTimeout).Body); cl != "" {
			t.Errorf("%s raised %s", fn, cl)
		}
	}
}

// TestServiceStatsCurveKey: over CURVE a worker's entry carries the public
// key it registered with.
func TestServiceStatsCurveKey(t *testing.T) {
	cv := gatetest.NewCurve(t)
	h := startCurve(t, cv, nil)
	w := h.CurveWorker(t, cv.Server.Public, cv.Worker)
	w.Ready("Echo", "echo", 1)
	waitStats(t, h, "worker registered", func(s broker.Stats) bool { return s.Workers == 1 })
	cl := h.CurveClient(t, cv.Server.Public, cv.Client)
	got := gateStats(t, cl, 1)
	if len(got) != 1 || len(got[0].Workers) != 1 || got[0].Workers[0].Key != cv.Worker.Public {
		t.Fatalf("service_stats() over CURVE = %+v, want the worker's key %s", got, cv.Worker.Public)
	}
}
