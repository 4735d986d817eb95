package gate

import (
	"testing"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// TestWorkerBatchStream: stream items that queue up while the socket
// refuses messages go out as batches (wire.StreamBatchBody) of at most
// the client's batch size, in order and before the end marker, but only
// when the broker counts batches (MetaRelay = RelayBatch) and the client
// accepts them (MetaBatch). Otherwise every item is a message of its own.
func TestWorkerBatchStream(t *testing.T) {
	win := wire.Window{Items: 4096, Bytes: 1 << 30}
	relayBatch := func(md map[string]string) map[string]string {
		md[wire.MetaRelay] = wire.RelayBatch
		return md
	}
	cases := []struct {
		name    string
		md      map[string]string
		batched bool
	}{
		{"batched", relayBatch(relayed(win, wire.MetaBatch, "16")), true},
		{"credit relay only", relayed(win, wire.MetaBatch, "16"), false},
		{"client without batches", relayBatch(relayed(win)), false},
		{"bad batch size", relayBatch(relayed(win, wire.MetaBatch, "1")), false},
	}
	const n = 600
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(t)
			done := make(chan error, 1)
			// A small high-water mark: the socket refuses the items after
			// the first few while the backend does not read, so the rest
			// wait in the loop's queue together.
			set := DefaultSettings()
			set.Heartbeat, set.Liveness, set.HWM = testHB, 50, 4
			startWorker(t, b, countService(t, done), WithSettings(set))
			b.expectReady()
			rid := flowRID("s1", tc.md)
			body, _ := codec.EncodeRequestBody("count", []any{n}, nil)
			b.request([]byte("c1"), rid, body...)
			if err := <-done; err != nil { // every item is queued or sent
				t.Fatal(err)
			}
			var next int64
			msgs, biggest := 0, 0
			for next < n {
				m := b.next(workerRecvTimeout)
				kind, payload := wire.ClassifyReply(m.Body)
				if kind != wire.ReplyStreamItem {
					t.Fatalf("%v after %d items, want a stream item", kind, next)
				}
				msgs++
				items := [][]byte{payload}
				if wire.IsStreamBatch(m.Body) {
					if !tc.batched {
						t.Fatalf("a batch without RelayBatch and MetaBatch")
					}
					items = items[:0]
					for rest := payload; len(rest) > 0; {
						item, r, err := codec.SplitValue(rest)
						if err != nil {
							t.Fatal(err)
						}
						items, rest = append(items, item), r
					}
				}
				biggest = max(biggest, len(items))
				for _, it := range items {
					if v, err := codec.Decode(it); err != nil || v != next {
						t.Fatalf("item = %v (%v), want %d", v, err, next)
					}
					next++
				}
			}
			if kind, _ := b.replyFor(rid); kind != wire.ReplyStreamEnd {
				t.Fatalf("after %d items: %v, want the end marker", n, kind)
			}
			switch {
			case tc.batched && (biggest > 16 || msgs > n/2):
				t.Fatalf("%d items in %d messages, the biggest %d items: want batches of at most 16", n, msgs, biggest)
			case !tc.batched && msgs != n:
				t.Fatalf("%d items in %d messages, want one each", n, msgs)
			}
		})
	}
}
