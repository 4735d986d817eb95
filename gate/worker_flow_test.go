package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// flowRID returns a request id carrying md.
func flowRID(base string, md map[string]string) []byte {
	return wire.EncodeRequestID([]byte(base), wire.RequestMeta{MD: md})
}

// relayed is the metadata of a call through a gate broker that relays
// credit: window and relay marker.
func relayed(win wire.Window, extra ...string) map[string]string {
	md := map[string]string{wire.MetaWindow: win.String(), wire.MetaRelay: "1"}
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	return md
}

func (b *fakeBackend) credit(client, rid []byte, c wire.Credit) {
	b.t.Helper()
	b.send(wire.WorkerMessage{Command: wire.CmdCredit, Client: client, RequestID: rid, Body: [][]byte{wire.AppendCredit(nil, c)}}.Frames()...)
}

func (b *fakeBackend) cancel(client, rid []byte) {
	b.t.Helper()
	b.send(wire.WorkerMessage{Command: wire.CmdCancel, Client: client, RequestID: rid}.Frames()...)
}

// replyFor waits for the next REPLY for rid (compared as bytes).
func (b *fakeBackend) replyFor(rid []byte) (wire.ReplyKind, []byte) {
	b.t.Helper()
	m := b.next(workerRecvTimeout)
	if m.Command != wire.CmdReply || !bytes.Equal(m.RequestID, rid) {
		b.t.Fatalf("got %v for %q, want a REPLY for %q", m.Command, m.RequestID, rid)
	}
	return wire.ClassifyReply(m.Body)
}

var barrierSeq atomic.Int64

// heldAt proves that the producer of the relayed call (client, rid) is
// held by its window after handing exactly sent messages to the socket
// loop, without waiting to see that nothing comes:
//
//  1. A get_interfaces round trip on the same connection orders the check
//     after every CREDIT sent before it: the worker's loop applies
//     credits in the order it reads them, before it starts the next call.
//     A message the producer sent meanwhile arrives ahead of the answer
//     and fails the test.
//  2. Two wake-ups of the producer, each taken from its wake channel, show
//     that it re-checked the window with those credits applied and went
//     back to waiting in acquire.
//  3. Its count of messages handed to the loop is then exactly sent, so
//     nothing beyond what the test has read can arrive until a grant.
func (b *fakeBackend) heldAt(w *Worker, client, rid []byte, sent int64) {
	b.t.Helper()
	brid := fmt.Sprintf("barrier-%d", barrierSeq.Add(1))
	if _, exc := decodeSingle(b.t, b.call(brid, getInterfacesName, nil, nil)); exc != nil {
		b.t.Fatalf("barrier get_interfaces raised %v", exc)
	}
	var f *flowCtl
	waitCond(b.t, "the call's flow control", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if c := w.inflight[callKey(client, rid)]; c != nil {
			f = c.flow
		}
		return f != nil
	})
	for range 2 {
		select {
		case f.wake <- struct{}{}:
		default: // a grant's wake-up is already waiting: the same test
		}
		waitCond(b.t, "the producer to wait for credit", func() bool { return len(f.wake) == 0 })
	}
	f.mu.Lock()
	got := f.sent.Items
	f.mu.Unlock()
	if got != sent {
		b.t.Fatalf("producer handed %d messages to the loop, want %d held by the window", got, sent)
	}
}

// waitCond polls cond until it holds, failing the test after
// workerRecvTimeout.
func waitCond(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(workerRecvTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// streamItems reads n stream items for rid and checks they count on from
// *next.
func streamItems(t *testing.T, b *fakeBackend, rid []byte, n int, next *int64) {
	t.Helper()
	for range n {
		kind, payload := b.replyFor(rid)
		if kind != wire.ReplyStreamItem {
			t.Fatalf("reply kind %v after item %d, want a stream item", kind, *next)
		}
		v, err := codec.Decode(payload)
		if err != nil || v != *next {
			t.Fatalf("item = %v (%v), want %d", v, err, *next)
		}
		*next++
	}
}

// countSeq streams the integers 0..n-1.
func countSeq(_ context.Context, n int) (iter.Seq[int], error) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}, nil
}

func countService(t *testing.T, done chan<- error) *Service {
	svc := mustService(t, "F")
	mustOK(t, Func1(svc, "count", func(ctx context.Context, n int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			defer func() {
				if done != nil {
					done <- ctx.Err()
				}
			}()
			for i := range n {
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	mustOK(t, svc.Register("writer", func(ctx context.Context, n int, sw *StreamWriter) error {
		for i := range n {
			if err := sw.Send(i); err != nil {
				return err
			}
		}
		return nil
	}))
	return svc
}

// TestWorkerFlowStreamWindow: a relayed stream stops at the window's
// items until CREDIT arrives, then goes on; an iterator and a
// StreamWriter are held alike.
func TestWorkerFlowStreamWindow(t *testing.T) {
	for _, fn := range []string{"count", "writer"} {
		t.Run(fn, func(t *testing.T) {
			b := newFakeBackend(t)
			w := startWorker(t, b, countService(t, nil))
			b.expectReady()
			client := []byte("c1")
			rid := flowRID("s1", relayed(wire.Window{Items: 10, Bytes: 1 << 20}))
			body, _ := codec.EncodeRequestBody(fn, []any{35}, nil)
			b.request(client, rid, body...)
			var next int64
			streamItems(t, b, rid, 10, &next)
			b.heldAt(w, client, rid, 10)
			b.credit(client, rid, wire.Credit{Items: 5, Bytes: 5})
			streamItems(t, b, rid, 5, &next)
			b.heldAt(w, client, rid, 15)
			// A stale (lower) credit changes nothing; credits are cumulative.
			b.credit(client, rid, wire.Credit{Items: 3, Bytes: 3})
			b.heldAt(w, client, rid, 15)
			b.credit(client, rid, wire.Credit{Items: 25, Bytes: 25})
			streamItems(t, b, rid, 20, &next)
			if kind, _ := b.replyFor(rid); kind != wire.ReplyStreamEnd {
				t.Fatalf("after 35 items: %v, want the end marker (never held)", kind)
			}
		})
	}
}

// TestWorkerFlowHugeBytes: HugeData chunks of a relayed call are held to
// the window's bytes, at the chunk size the client asked for.
func TestWorkerFlowHugeBytes(t *testing.T) {
	value := make([]byte, 64<<10)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(value) // incompressible: about 66 chunks of 1000 bytes
	b := newFakeBackend(t)
	svc := mustService(t, "F")
	mustOK(t, Func1(svc, "blob", func(context.Context, int) (HugeValue, error) { return Huge(value), nil }))
	w := startWorker(t, b, svc)
	b.expectReady()
	client := []byte("c1")
	rid := flowRID("h1", relayed(wire.Window{Items: 1000, Bytes: 4096}, wire.MetaChunk, "1000"))
	body, _ := codec.EncodeRequestBody("blob", []any{0}, nil)
	b.request(client, rid, body...)
	var chunks [][]byte
	var got int64
	take := func(n int) {
		t.Helper()
		for range n {
			kind, c := b.replyFor(rid)
			if kind != wire.ReplyHugeChunk {
				t.Fatalf("reply kind %v after %d chunks, want a chunk", kind, len(chunks))
			}
			if len(c) != 1000 {
				t.Fatalf("chunk %d is %d bytes, want 1000", len(chunks), len(c))
			}
			chunks = append(chunks, c)
			got += int64(len(c))
		}
	}
	// Fewer than 4096 bytes outstanding lets the fifth chunk go (4000 <
	// 4096), not the sixth.
	take(5)
	b.heldAt(w, client, rid, 5)
	b.credit(client, rid, wire.Credit{Items: 2, Bytes: 2000})
	take(2)
	b.heldAt(w, client, rid, 7)
	b.credit(client, rid, wire.Credit{Items: 1 << 30, Bytes: 1 << 40})
	chunks = hugeRest(t, b, rid, chunks)
	raw, err := chunk.Join(chunks)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	mustOK(t, codec.Unmarshal(raw, &out))
	if !bytes.Equal(out, value) {
		t.Fatalf("value differs: %d bytes", len(out))
	}
}

// TestWorkerFlowNeedsRelay: a window without the broker's relay marker
// (a 0.2.12 broker in the path, or a client forging nothing) is not held:
// no credit would ever come.
func TestWorkerFlowNeedsRelay(t *testing.T) {
	b := newFakeBackend(t)
	startWorker(t, b, countService(t, nil))
	b.expectReady()
	for i, md := range []map[string]string{
		{wire.MetaWindow: "2,1024"},
		{wire.MetaWindow: "2,1024", wire.MetaRelay: "0"},
		{wire.MetaWindow: "bogus", wire.MetaRelay: "1"},
	} {
		rid := flowRID("n"+string(rune('0'+i)), md)
		body, _ := codec.EncodeRequestBody("count", []any{50}, nil)
		b.request([]byte("c1"), rid, body...)
		var next int64
		streamItems(t, b, rid, 50, &next)
		if kind, _ := b.replyFor(rid); kind != wire.ReplyStreamEnd {
			t.Fatalf("%v: got %v, want the end marker", md, kind)
		}
	}
}

// TestWorkerFlowChunkSize: gate.chunk sets the HugeData chunk size
// through any broker; without it the worker uses HugeDataSizeOf (1000).
func TestWorkerFlowChunkSize(t *testing.T) {
	value := make([]byte, 300<<10)
	r := rand.NewChaCha8([32]byte{2})
	_, _ = r.Read(value)
	b := newFakeBackend(t)
	svc := mustService(t, "F")
	mustOK(t, Func1(svc, "blob", func(context.Context, int) (HugeValue, error) { return Huge(value), nil }))
	startWorker(t, b, svc)
	b.expectReady()
	for _, tc := range []struct {
		md   map[string]string
		want int
	}{
		{nil, 1000},
		{map[string]string{wire.MetaChunk: "65536"}, 65536},
		{map[string]string{wire.MetaChunk: "5000", wire.MetaWindow: "4,1048576", wire.MetaRelay: "1"}, 5000},
		{map[string]string{wire.MetaChunk: "999"}, 1000},     // out of range: ignored
		{map[string]string{wire.MetaChunk: "8388608"}, 1000}, // over 4 MiB: ignored
	} {
		rid := []byte("plain")
		if tc.md != nil {
			rid = flowRID("k", tc.md)
		}
		body, _ := codec.EncodeRequestBody("blob", []any{0}, nil)
		b.request([]byte("c1"), rid, body...)
		var chunks [][]byte
		for {
			kind, c := b.replyFor(rid)
			if kind == wire.ReplyHugeEnd {
				break
			}
			chunks = append(chunks, c)
			if tc.md[wire.MetaRelay] == "1" {
				b.credit([]byte("c1"), rid, wire.Credit{Items: int64(len(chunks)), Bytes: int64(len(chunks) * tc.want)})
			}
		}
		for i, c := range chunks[:len(chunks)-2] {
			if len(c) != tc.want {
				t.Fatalf("%v: chunk %d is %d bytes, want %d", tc.md, i, len(c), tc.want)
			}
		}
		raw, err := chunk.Join(chunks)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		mustOK(t, codec.Unmarshal(raw, &out))
		if !bytes.Equal(out, value) {
			t.Fatalf("%v: value differs", tc.md)
		}
	}
}

// TestWorkerFlowCancelWhileHeld: CANCEL unblocks a producer waiting for
// credit and the call ends with a final reply.
func TestWorkerFlowCancelWhileHeld(t *testing.T) {
	for _, fn := range []string{"count", "writer"} {
		t.Run(fn, func(t *testing.T) {
			b := newFakeBackend(t)
			done := make(chan error, 1)
			w := startWorker(t, b, countService(t, done))
			b.expectReady()
			client := []byte("c1")
			rid := flowRID("x1", relayed(wire.Window{Items: 3, Bytes: 1 << 20}))
			body, _ := codec.EncodeRequestBody(fn, []any{1000}, nil)
			b.request(client, rid, body...)
			var next int64
			streamItems(t, b, rid, 3, &next)
			b.heldAt(w, client, rid, 3)
			b.cancel(client, rid)
			kind, payload := b.replyFor(rid)
			if kind != wire.ReplySingle {
				t.Fatalf("after CANCEL: %v, want the final single reply", kind)
			}
			if _, exc, err := codec.DecodeReply(payload); err != nil || exc == nil || exc.Class != "CancelledError" {
				t.Fatalf("final reply %v, %v; want CancelledError", exc, err)
			}
			if fn == "count" {
				select {
				case err := <-done:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("iterator's ctx: %v, want Canceled", err)
					}
				case <-time.After(workerRecvTimeout):
					t.Fatal("the iterator did not return after CANCEL")
				}
			}
		})
	}
}

// TestWorkerFlowDeadlineWhileHeld: a deadline while waiting for credit
// ends a stream with its exception marker and a HugeData reply with its
// own.
func TestWorkerFlowDeadlineWhileHeld(t *testing.T) {
	b := newFakeBackend(t)
	svc := countService(t, nil)
	value := make([]byte, 64<<10)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(value)
	mustOK(t, Func1(svc, "blob", func(context.Context, int) (HugeValue, error) { return Huge(value), nil }))
	startWorker(t, b, svc)
	b.expectReady()
	for _, tc := range []struct {
		fn   string
		last wire.ReplyKind
	}{{"count", wire.ReplyStreamError}, {"writer", wire.ReplyStreamError}, {"blob", wire.ReplyHugeError}} {
		rid := wire.EncodeRequestID([]byte("d-"+tc.fn), wire.RequestMeta{Budget: 500 * time.Millisecond,
			MD: relayed(wire.Window{Items: 2, Bytes: 1 << 20}, wire.MetaChunk, "1000")})
		body, _ := codec.EncodeRequestBody(tc.fn, []any{100}, nil)
		b.request([]byte("c1"), rid, body...)
		var kind wire.ReplyKind
		var payload []byte
		for n := 0; ; n++ {
			kind, payload = b.replyFor(rid)
			if kind != wire.ReplyStreamItem && kind != wire.ReplyHugeChunk {
				break
			}
			if n >= 2 {
				t.Fatalf("%s: more than the window of 2 messages", tc.fn)
			}
		}
		if kind != tc.last {
			t.Fatalf("%s: ended with %v, want %v", tc.fn, kind, tc.last)
		}
		exc, err := codec.DecodeTriple(payload)
		if err != nil || exc.Class != "TimeoutError" {
			t.Fatalf("%s: exception %v, %v; want TimeoutError", tc.fn, exc, err)
		}
	}
}

// TestWorkerFlowCloseWhileHeld: shutting the worker down while producers
// wait for credit does not hang (goleak in TestMain checks that every
// goroutine, the compression pipeline's included, is gone).
func TestWorkerFlowCloseWhileHeld(t *testing.T) {
	b := newFakeBackend(t)
	svc := countService(t, nil)
	mustOK(t, Func1(svc, "blob", func(context.Context, int) (HugeValue, error) {
		return HugeBinary(64<<20, rand.NewChaCha8([32]byte{4})), nil
	}))
	w := startWorker(t, b, svc)
	b.expectReady()
	for _, fn := range []string{"count", "writer", "blob"} {
		rid := flowRID("z-"+fn, relayed(wire.Window{Items: 2, Bytes: 1 << 20}, wire.MetaChunk, "4096"))
		body, _ := codec.EncodeRequestBody(fn, []any{1 << 20}, nil)
		b.request([]byte("c1"), rid, body...)
		for range 2 {
			b.replyFor(rid)
		}
		b.heldAt(w, []byte("c1"), rid, 2)
	}
	// A graceful Shutdown waits for the held calls until its ctx ends,
	// then closes the worker. The held calls never finish, so the
	// deadline's length does not matter: it only has to pass.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- w.Shutdown(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want DeadlineExceeded (the held calls never finish)", err)
		}
	case <-time.After(workerTestTimeout):
		t.Fatal("Shutdown hung with producers held by the window")
	}
}

// TestWorkerHugeSources: HugeBinary and HugeFrom stream a value the
// worker never holds; the caller receives the value itself.
func TestWorkerHugeSources(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "F")
	const n = 3<<20 + 17
	mustOK(t, Func1(svc, "bin", func(_ context.Context, size int) (HugeValue, error) {
		return HugeBinary(int64(size), rand.NewChaCha8([32]byte{5})), nil
	}))
	mustOK(t, Func1(svc, "short", func(_ context.Context, size int) (HugeValue, error) {
		return HugeBinary(int64(size), io.LimitReader(rand.NewChaCha8([32]byte{5}), int64(size/2))), nil
	}))
	closed := make(chan bool, 1)
	mustOK(t, Func1(svc, "from", func(_ context.Context, s string) (HugeValue, error) {
		enc, err := codec.Marshal(map[string]any{"s": s})
		if err != nil {
			return HugeValue{}, err
		}
		return HugeFrom(&closeRecorder{Reader: bytes.NewReader(enc), closed: closed}), nil
	}))
	startWorker(t, b, svc, WithHugeData("zstd", 1, 1000))
	b.expectReady()

	want := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{5}).Read(want)
	rid := flowRID("bin", map[string]string{wire.MetaChunk: "262144"})
	body, _ := codec.EncodeRequestBody("bin", []any{n}, nil)
	b.request([]byte("c1"), rid, body...)
	var got []byte
	mustOK(t, codec.Unmarshal(joinHuge(t, b, rid, "zstd"), &got))
	if !bytes.Equal(got, want) {
		t.Fatalf("HugeBinary: got %d bytes, want %d equal bytes", len(got), len(want))
	}

	rid = []byte("from")
	body, _ = codec.EncodeRequestBody("from", []any{"hello"}, nil)
	b.request([]byte("c1"), rid, body...)
	var m map[string]string
	mustOK(t, codec.Unmarshal(joinHuge(t, b, rid, "zstd"), &m))
	if m["s"] != "hello" {
		t.Fatalf("HugeFrom: got %v", m)
	}
	select {
	case <-closed:
	default:
		t.Fatal("HugeFrom did not close its io.Closer source")
	}

	// A size outside the bin range is an error before anything is sent.
	for _, size := range []int{-1, 1 << 32} {
		if _, exc := decodeSingle(t, b.call("bad", "bin", []any{size}, nil)); exc == nil || !bytes.Contains([]byte(exc.Repr), []byte("bin range")) {
			t.Fatalf("HugeBinary(%d): %v, want an exception about the bin range", size, exc)
		}
	}

	rid = []byte("short")
	body, _ = codec.EncodeRequestBody("short", []any{100000}, nil)
	b.request([]byte("c1"), rid, body...)
	for {
		kind, payload := b.replyFor(rid)
		if kind == wire.ReplyHugeChunk {
			continue
		}
		if kind != wire.ReplyHugeError {
			t.Fatalf("short source: %v, want the HugeData exception marker", kind)
		}
		exc, err := codec.DecodeTriple(payload)
		if err != nil || !bytes.Contains([]byte(exc.Repr), []byte("50000 of 100000")) {
			t.Fatalf("short source: %v, %v", exc, err)
		}
		break
	}
}

type closeRecorder struct {
	io.Reader
	closed chan bool
}

func (c *closeRecorder) Close() error {
	c.closed <- true
	return nil
}

// hugeRest appends the HugeData chunks for rid to chunks until the end
// marker, failing on any other reply.
func hugeRest(t *testing.T, b *fakeBackend, rid []byte, chunks [][]byte) [][]byte {
	t.Helper()
	for {
		kind, c := b.replyFor(rid)
		switch kind {
		case wire.ReplyHugeEnd:
			return chunks
		case wire.ReplyHugeChunk:
			chunks = append(chunks, c)
		default:
			t.Fatalf("reply kind %v after %d chunks, want a chunk or the end", kind, len(chunks))
		}
	}
}

func joinHuge(t *testing.T, b *fakeBackend, rid []byte, comp string) []byte {
	t.Helper()
	chunks := hugeRest(t, b, rid, nil)
	raw, err := chunk.Join(chunks, chunk.WithCompression(comp), chunk.WithMaxSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestWorkerFlowEarlyCredit: a credit that reaches the worker right
// behind its request, before the call's goroutine has set up its flow
// control, is not lost.
func TestWorkerFlowEarlyCredit(t *testing.T) {
	b := newFakeBackend(t)
	startWorker(t, b, countService(t, nil))
	b.expectReady()
	for i := range 20 {
		client := []byte("c1")
		rid := flowRID("e"+string(rune('a'+i)), relayed(wire.Window{Items: 2, Bytes: 1 << 20}))
		body, _ := codec.EncodeRequestBody("count", []any{30}, nil)
		// One send of both messages: the loop reads them in one batch.
		b.request(client, rid, body...)
		b.credit(client, rid, wire.Credit{Items: 28, Bytes: 1 << 10})
		var next int64
		streamItems(t, b, rid, 30, &next)
		if kind, _ := b.replyFor(rid); kind != wire.ReplyStreamEnd {
			t.Fatalf("got %v, want the end marker", kind)
		}
	}
}

// procHugeBinary streams n pseudo-random bytes from a process-pool child.
var procHugeBinary = MustProcessFunc("gate_test.huge_binary", func(_ context.Context, n int) (HugeValue, error) {
	return HugeBinary(int64(n), rand.NewChaCha8([32]byte{6})), nil
})

// TestWorkerFlowProcessPool: a HugeBinary value from a process-pool child
// reaches the parent in one piece and leaves it under the window like any
// other HugeData reply.
func TestWorkerFlowProcessPool(t *testing.T) {
	pool, err := NewProcessPool(1)
	mustOK(t, err)
	t.Cleanup(func() { pool.Close() })
	b := newFakeBackend(t)
	svc := mustService(t, "P")
	mustOK(t, svc.Register("blob", procHugeBinary, WithExecutor(pool)))
	w := startWorker(t, b, svc, WithHugeData("zstd", 1, 1000))
	b.expectReady()
	const n = 200 << 10
	client := []byte("c1")
	rid := flowRID("p1", relayed(wire.Window{Items: 2, Bytes: 1 << 20}, wire.MetaChunk, "4096"))
	body, _ := codec.EncodeRequestBody("blob", []any{n}, nil)
	b.request(client, rid, body...)
	var chunks [][]byte
	for range 2 {
		kind, c := b.replyFor(rid)
		if kind != wire.ReplyHugeChunk {
			t.Fatalf("reply kind %v, want a chunk", kind)
		}
		chunks = append(chunks, c)
	}
	b.heldAt(w, client, rid, 2)
	b.credit(client, rid, wire.Credit{Items: 1 << 20, Bytes: 1 << 40})
	chunks = hugeRest(t, b, rid, chunks)
	raw, err := chunk.Join(chunks, chunk.WithCompression("zstd"))
	mustOK(t, err)
	var got []byte
	mustOK(t, codec.Unmarshal(raw, &got))
	want := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{6}).Read(want)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d equal bytes", len(got), n)
	}
}

// TestWorkerHugeStopsOnCancel: without a window too, a cancelled call's
// HugeData producer stops at its next chunk instead of sending the rest
// of the value.
func TestWorkerHugeStopsOnCancel(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "F")
	mustOK(t, Func1(svc, "blob", func(context.Context, int) (HugeValue, error) {
		return HugeBinary(1<<30, rand.NewChaCha8([32]byte{8})), nil
	}))
	startWorker(t, b, svc, WithHugeData("zstd", 1, 1000))
	b.expectReady()
	client, rid := []byte("c1"), []byte("big")
	body, _ := codec.EncodeRequestBody("blob", []any{0}, nil)
	b.request(client, rid, body...)
	b.replyFor(rid) // the value is being sent
	b.cancel(client, rid)
	// 1 GiB is a million chunks: a producer that kept going would be far
	// from done when this loop gives up.
	for n := 0; ; n++ {
		kind, _ := b.replyFor(rid)
		if kind != wire.ReplyHugeChunk {
			if kind != wire.ReplySingle {
				t.Fatalf("after CANCEL: %v, want the final single reply", kind)
			}
			break
		}
		if n > 100_000 {
			t.Fatal("the producer did not stop after CANCEL")
		}
	}
}
