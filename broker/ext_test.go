package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
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
	gw.ExpectQuiet(2) // rid 3 never dispatched

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

// TestAdmission runs a filter on the loop: it sees each worker-service
// request (identity and metadata included), refuses some with the error
// it returns, and admits the rest, which run as usual.
func TestAdmission(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	admit := func(req *gate.Request) error {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s %q %v", req.Info().Role, req.Info().FullMethod(), req.ID, req.Metadata["baggage"], len(req.Peer) > 0))
		mu.Unlock()
		switch req.Method {
		case "refuse":
			return gate.Errorf(gate.NotFound, "refused by admission")
		case "plain":
			return errors.New("no")
		case "custom":
			return &gate.Error{Code: gate.ResourceExhausted, Class: "QuotaError", Message: "QuotaError('over quota')"}
		}
		return nil
	}
	obs := &recObserver{}
	h := gatetest.StartBroker(t, broker.WithAdmission(admit), broker.WithObserver(obs))
	w := readyWorker(t, h, "M", 2)
	c := h.RawClient(t)

	id := wire.EncodeRequestID([]byte("base-000000000001"), wire.RequestMeta{MD: map[string]string{"baggage": "k=v"}})
	c.Request("M", id, call(t, "echo")...)
	req := w.NextRequest(recvTimeout)
	if _, meta, err := wire.DecodeRequestID(req.RequestID); err != nil || meta.MD["baggage"] != "k=v" {
		t.Fatalf("worker metadata %v (%v), want the client's", meta.MD, err)
	}
	w.Reply(req.Client, req.RequestID, result(t, "hi"))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, id) || !bytes.Equal(rep.Body[0], result(t, "hi")) {
		t.Fatalf("reply %+v", rep)
	}

	c.Request("M", rid(2), call(t, "refuse")...)
	wantException(t, c.NextReply(recvTimeout), "NotFoundError", "NotFoundError('refused by admission')")
	c.Request("M", rid(3), call(t, "plain")...)
	wantException(t, c.NextReply(recvTimeout), "Exception", "Exception('no')")
	c.Request("M", rid(4), call(t, "custom")...)
	wantException(t, c.NextReply(recvTimeout), "QuotaError", "QuotaError('over quota')")
	// internal calls are not filtered
	c.Request("Gate", rid(5), call(t, "get_services")...)
	c.NextReply(recvTimeout)
	w.ExpectQuiet(2) // nothing refused reached the worker

	st := waitStats(t, h, "requests done", func(st broker.Stats) bool { return st.Requests == 0 })
	if st.Outcomes[broker.OutcomeRefused] != 3 || st.Outcomes["dispatched"] != 1 {
		t.Fatalf("outcomes %v, want 3 refused and 1 dispatched", st.Outcomes)
	}
	mu.Lock()
	got := fmt.Sprint(seen)
	mu.Unlock()
	want := fmt.Sprint([]string{
		`broker M/echo base-000000000001 "k=v" true`,
		`broker M/refuse ` + string(rid(2)) + ` "" true`,
		`broker M/plain ` + string(rid(3)) + ` "" true`,
		`broker M/custom ` + string(rid(4)) + ` "" true`,
	})
	if got != want {
		t.Fatalf("admission saw\n%s\nwant\n%s", got, want)
	}
	// The observer saw each request before the filter, and its refusal.
	var finishes []string
	for _, e := range obs.snapshot() {
		if strings.Contains(e, " finish ") {
			finishes = append(finishes, e)
		}
	}
	wantFin := fmt.Sprint([]string{"echo finish ok OK #1", "refuse finish refused NOT_FOUND #1",
		"plain finish refused UNKNOWN #1", "custom finish refused RESOURCE_EXHAUSTED #1"})
	if fmt.Sprint(finishes) != wantFin {
		t.Fatalf("observer finishes %q, want %s", finishes, wantFin)
	}
}
