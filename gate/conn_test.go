package gate

import (
	"context"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// TestWorkerBacklogKeepsOrder fills the worker's socket (tiny high-water
// marks, a backend that does not read) with a stream longer than the
// reply queue: the engine must park refused messages in its backlog, stop
// taking replies (the generator then waits for room), and deliver every
// item in order once the backend reads again.
func TestWorkerBacklogKeepsOrder(t *testing.T) {
	b := newFakeBackend(t)
	_ = b.sock.SetRcvhwm(8)
	const items = 3 * mailboxSize
	var yielded atomic.Int64
	svc := mustService(t, "Back")
	mustOK(t, Func1(svc, "count", func(_ context.Context, n int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := range n {
				yielded.Add(1)
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	s := DefaultSettings()
	s.HWM, s.Heartbeat, s.Liveness = 8, testHB, 50
	startWorker(t, b, svc, WithSettings(s))
	b.expectReady()
	body, err := codec.EncodeRequestBody("count", []any{items}, nil)
	mustOK(t, err)
	b.request([]byte("c"), []byte("r1"), body...)

	// Without reading, let the generator run ahead until more items exist
	// than the socket pipes and the reply queue hold together: some sit in
	// the backlog.
	deadline := time.Now().Add(workerTestTimeout)
	for yielded.Load() < mailboxSize+64 {
		if time.Now().After(deadline) {
			t.Fatalf("generator stuck at %d items", yielded.Load())
		}
		time.Sleep(time.Millisecond)
	}
	for i := range items {
		m := b.reply("r1")
		kind, payload := wire.ClassifyReply(m.Body)
		if kind != wire.ReplyStreamItem {
			t.Fatalf("message %d: kind %v, want a stream item", i, kind)
		}
		v, err := codec.Decode(payload)
		if err != nil || v != int64(i) {
			t.Fatalf("item %d = %v (%v), want %d: order lost", i, v, err, i)
		}
	}
	if kind, _ := wire.ClassifyReply(b.reply("r1").Body); kind != wire.ReplyStreamEnd {
		t.Fatalf("after %d items: %v, want the end marker", items, kind)
	}
}
