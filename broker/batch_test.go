package broker_test

import (
	"bytes"
	"testing"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// Batched stream items (docs/flow-control.md §7) at the broker.

// batchOf concatenates the msgpack encodings of items.
func batchOf(t testing.TB, items ...any) []byte {
	t.Helper()
	var b []byte
	for _, it := range items {
		b = append(b, mp(t, it)...)
	}
	return b
}

// TestBatchRelayMarker: the broker marks a relayed request with
// RelayBatch for a gaterpc/4 worker and RelayCredit for a gaterpc/3 one,
// and reports the worker's protocol in Gate.service_stats terms.
func TestBatchRelayMarker(t *testing.T) {
	win := wire.Window{Items: 8, Bytes: 4096}
	for _, tc := range []struct{ capability, relay string }{
		{wire.GateCapabilityBatch, wire.RelayBatch},
		{wire.GateCapabilityFlow, wire.RelayCredit},
	} {
		t.Run(tc.capability, func(t *testing.T) {
			h := gatetest.StartBroker(t)
			w := capabilityWorker(t, h, "S", 1, tc.capability)
			c := h.RawClient(t)
			id := flowID("a", win, wire.MetaBatch, "16")
			c.Request("S", id, call(t, "gen")...)
			req := w.NextRequest(recvTimeout)
			md := requestMD(t, req.RequestID)
			if md[wire.MetaRelay] != tc.relay || md[wire.MetaBatch] != "16" {
				t.Fatalf("worker got metadata %v, want gate.relay %q and gate.batch kept", md, tc.relay)
			}
			w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
			c.NextReply(recvTimeout)
		})
	}
}

// batchCall starts a broker with a gaterpc/4 worker and a raw client
// whose stream call, with a four-item window and batches, the worker has
// received.
func batchCall(t *testing.T) (*gatetest.Harness, *gatetest.RawWorker, *gatetest.RawClient, []byte, wire.WorkerMessage) {
	t.Helper()
	h := gatetest.StartBroker(t)
	w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityBatch)
	c := h.RawClient(t)
	id := flowID("b", wire.Window{Items: 4, Bytes: 1 << 20}, wire.MetaBatch, "16")
	c.Request("S", id, call(t, "gen")...)
	return h, w, c, id, w.NextRequest(recvTimeout)
}

// TestBatchCounted: every item of a batch counts against the window: a
// batch that fits is relayed as it came and the credit the broker relays
// is capped at the items counted; a batch whose items overrun the window
// fails the call like any flow-control violation, and so does a batch
// that does not split into msgpack values.
func TestBatchCounted(t *testing.T) {
	t.Run("within", func(t *testing.T) {
		_, w, c, id, req := batchCall(t)
		items := batchOf(t, 0, 1, 2)
		w.Reply(req.Client, req.RequestID, wire.StreamBatchBody(items)...)
		rep := c.NextReply(recvTimeout)
		if !wire.IsStreamBatch(rep.Body) || !bytes.Equal(rep.Body[2], items) {
			t.Fatalf("client got %q, want the batch as sent", rep.Body)
		}
		// The reader claims more than was relayed: capped at 3 items.
		sendCredit(t, c, 1, id, 10, 1000)
		if cr := nextCredit(t, w, req.RequestID); cr.Items != 3 || cr.Bytes != int64(len(items)) {
			t.Fatalf("credit %+v, want 3 items, %d bytes", cr, len(items))
		}
		// With 3 sent and 3 credited, a batch of four fits the window.
		w.Reply(req.Client, req.RequestID, wire.StreamBatchBody(batchOf(t, 3, 4, 5, 6))...)
		w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
		for range 2 {
			if kind, payload := wire.ClassifyReply(c.NextReply(recvTimeout).Body); kind.IsError() {
				t.Fatalf("got %v %q within the window", kind, payload)
			}
		}
	})
	for _, tc := range []struct {
		name  string
		items []byte
	}{
		{"overrun", nil}, // five items in a four-item window
		{"malformed", append(batchOf(t, 0), 0xc1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, w, c, _, req := batchCall(t)
			items := tc.items
			if items == nil {
				items = batchOf(t, 0, 1, 2, 3, 4)
			}
			w.Reply(req.Client, req.RequestID, wire.StreamBatchBody(items)...)
			rep := c.NextReply(recvTimeout)
			kind, payload := wire.ClassifyReply(rep.Body)
			if !kind.IsError() || !bytes.Contains(payload, []byte("BusyWorkerError")) {
				t.Fatalf("got %v %q, want BusyWorkerError", kind, payload)
			}
			if m, err := w.NextMessage(recvTimeout); err != nil || m.Command != wire.CmdCancel {
				t.Fatalf("worker got %v (%v), want CANCEL", m.Command, err)
			}
			if st := stats(h); st.Drops["backend/flow_violation"] != 1 || st.Outcomes[broker.OutcomeFull] != 1 {
				t.Fatalf("drops %v outcomes %v, want one backend/flow_violation", st.Drops, st.Outcomes)
			}
		})
	}
}
