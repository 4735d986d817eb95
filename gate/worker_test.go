package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/wire/wiretest"
)

func loadVectors(t testing.TB) *wiretest.Vectors {
	return wiretest.Load(t, "../internal/wire/testdata/vectors.txt")
}

// echoMethod returns {"args": args, "kwargs": kwargs} like the Python test
// service's echo.
func echoMethod(_ context.Context, kw Kwargs, args ...any) (codec.Map, error) {
	if args == nil {
		args = []any{}
	}
	return codec.Map{{Key: "args", Value: args}, {Key: "kwargs", Value: map[string]any(kw)}}, nil
}

func TestWorkerEchoFramesMatchVectors(t *testing.T) {
	vs := loadVectors(t)
	b := newFakeBackend(t)
	svc := mustService(t, "GateRPC")
	mustOK(t, svc.Register("echo", echoMethod))
	mustOK(t, svc.Register("gen3", func(context.Context) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := range 3 {
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	startWorker(t, b, svc)

	ready := b.nextFrames(workerRecvTimeout)
	if got, want := ready[3], vs.Get(t, "V_READY_BODY_DEFAULTS"); !bytes.Equal(got, want) {
		t.Fatalf("READY text %q, want %q", got, want)
	}
	b.wid = nil
	// find the worker id: the next heartbeat or anything
	frames, err := b.recv(workerRecvTimeout)
	if err != nil {
		t.Fatal(err)
	}
	b.wid = frames[0]

	client := vs.Get(t, "REP_ECHO_WORKER_FRAME_3")
	rid := vs.Get(t, "REP_ECHO_WORKER_FRAME_5")
	b.request(client, rid, vs.Get(t, "REQ_ECHO_FUNC"), vs.Get(t, "REQ_ECHO_ARGS"), vs.Get(t, "REQ_ECHO_KWARGS"))
	got := b.nextFrames(workerRecvTimeout)
	want := vs.Frames("REP_ECHO_WORKER_FRAME_")
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("echo reply frames\n got %x\nwant %x", got, want)
	}

	gen, _ := codec.Marshal("gen3")
	b.request(client, rid, gen, []byte{0x90}, []byte{0x80})
	for i := range 4 {
		got := b.nextFrames(workerRecvTimeout)
		var want [][]byte
		for f := 3; f <= 7; f++ {
			want = append(want, vs.Get(t, fmt.Sprintf("STREAM_GEN3_MSG%d_FRAME_%d", i, f)))
		}
		if !reflect.DeepEqual(normalize(got[3:]), normalize(want)) {
			t.Fatalf("stream message %d\n got %x\nwant %x", i, got[3:], want)
		}
	}
}

// normalize maps nil frames to empty ones for comparison.
func normalize(frames [][]byte) [][]byte {
	out := make([][]byte, len(frames))
	for i, f := range frames {
		out[i] = append([]byte{}, f...)
	}
	return out
}

func TestWorkerHeartbeats(t *testing.T) {
	b := newFakeBackend(t)
	startWorker(t, b, mustService(t, "HB"))
	var sawFlow, sawCapability, sawPlain bool
	deadline := time.Now().Add(workerRecvTimeout)
	for !(sawCapability && sawPlain) && time.Now().Before(deadline) {
		frames, err := b.recv(time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.ParseWorkerMessage(frames[1:])
		if err != nil {
			t.Fatal(err)
		}
		b.wid = frames[0]
		if m.Command == wire.CmdHeartbeat {
			if len(m.Extra) == 1 && string(m.Extra[0]) == wire.GateCapabilityFlow {
				sawFlow = true // first: what a gate broker without gaterpc/4 understands
			} else if len(m.Extra) == 1 && string(m.Extra[0]) == wire.GateCapabilityBatch && sawFlow {
				sawCapability = true
				b.send(nil, []byte(wire.WorkerHeader), []byte{byte(wire.CmdHeartbeat)}) // solicit an answer
			} else if len(m.Extra) == 0 {
				sawPlain = true
			}
		}
	}
	if !sawCapability || !sawPlain {
		t.Fatalf("capability heartbeat %v, plain heartbeat %v; want both", sawCapability, sawPlain)
	}
}

func TestWorkerPlainCalls(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "Types")
	mustOK(t, svc.Register("echo", echoMethod))
	mustOK(t, svc.Register("identity", func(_ context.Context, v any) (any, error) { return v, nil }))
	mustOK(t, Func2(svc, "add", func(_ context.Context, a, b int) (int, error) { return a + b, nil }))
	type opts struct {
		Prefix string
		Upper  bool `msgpack:"upper"`
	}
	mustOK(t, svc.Register("greet", func(_ context.Context, name string, o opts) (string, error) {
		s := o.Prefix + name
		if o.Upper {
			s = strings.ToUpper(s)
		}
		return s, nil
	}))
	mustOK(t, svc.Register("nothing", func(context.Context) {}))
	startWorker(t, b, svc)
	b.expectReady()

	values := []any{
		nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64),
		1.5, math.Inf(1), "", "héllo", []byte{}, []byte{0, 1, 2}, []any{}, []any{int64(1), "a", []any{nil}},
		map[string]any{"a": int64(1), "b": map[string]any{"c": []any{}}},
		strings.Repeat("x", 70000),
	}
	for i, v := range values {
		t.Run(fmt.Sprintf("identity-%d-%T", i, v), func(t *testing.T) {
			rid := fmt.Sprint("id", i)
			got, exc := decodeSingle(t, b.call(rid, "identity", []any{v}, nil))
			if exc != nil {
				t.Fatalf("identity(%v) raised %v", v, exc)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("identity(%#v) = %#v", v, got)
			}
		})
	}
	t.Run("identity-intkeys", func(t *testing.T) {
		// An any parameter decodes every map as map[string]any, so int
		// keys come back as their decimal strings.
		v := map[int]string{1: "one", 2: "two"}
		got, exc := decodeSingle(t, b.call("id-intkeys", "identity", []any{v}, nil))
		if want := map[string]any{"1": "one", "2": "two"}; exc != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("identity(%#v) = %#v, %v; want %#v", v, got, exc, want)
		}
	})
	tests := []struct {
		name   string
		fn     string
		args   []any
		kwargs map[string]any
		want   any
		class  string
		text   string
	}{
		{name: "add", fn: "add", args: []any{2, 3}, want: int64(5)},
		{name: "kwargs struct", fn: "greet", args: []any{"bob"}, kwargs: map[string]any{"prefix": "dr ", "upper": true}, want: "DR BOB"},
		{name: "kwargs by field name", fn: "greet", args: []any{"bob"}, kwargs: map[string]any{"Prefix": "mr "}, want: "mr bob"},
		{name: "echo kwargs", fn: "echo", args: []any{"a", 1}, kwargs: map[string]any{"k": true},
			want: map[string]any{"args": []any{"a", int64(1)}, "kwargs": map[string]any{"k": true}}},
		{name: "no result", fn: "nothing", want: nil},
		{name: "too few", fn: "add", args: []any{1}, class: "TypeError", text: "add() missing 1 required positional argument"},
		{name: "too many", fn: "add", args: []any{1, 2, 3}, class: "TypeError", text: "add() takes 2 positional arguments but 3 were given"},
		{name: "wrong type", fn: "add", args: []any{1, "x"}, class: "TypeError", text: "add() argument 2 must be int, not str"},
		{name: "unexpected kwarg", fn: "add", args: []any{1, 2}, kwargs: map[string]any{"z": 1}, class: "TypeError", text: "unexpected keyword argument 'z'"},
		{name: "unknown kwarg field", fn: "greet", args: []any{"x"}, kwargs: map[string]any{"nope": 1}, class: "TypeError", text: "unexpected keyword argument 'nope'"},
		{name: "unknown method", fn: "missing", class: "AttributeError", text: "AttributeError('Function not found: missing')"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rid := fmt.Sprint("t", i)
			got, exc := decodeSingle(t, b.call(rid, tt.fn, tt.args, tt.kwargs))
			if tt.class != "" {
				if exc == nil || exc.Class != tt.class || !strings.Contains(exc.Repr, tt.text) {
					t.Fatalf("%s(%v, %v) = %v, %v; want %s containing %q", tt.fn, tt.args, tt.kwargs, got, exc, tt.class, tt.text)
				}
				return
			}
			if exc != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s(%v, %v) = %#v, %v; want %#v", tt.fn, tt.args, tt.kwargs, got, exc, tt.want)
			}
		})
	}
}

func TestWorkerMalformedAndSecure(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprint("secure=", secure), func(t *testing.T) {
			b := newFakeBackend(t)
			svc := mustService(t, "M")
			mustOK(t, svc.Register("echo", echoMethod))
			s := DefaultSettings()
			s.Secure = secure
			startWorker(t, b, svc, WithSettings(s))
			b.expectReady()
			b.request([]byte("c"), []byte("bad"), []byte{0xc1})           // not msgpack
			b.request([]byte("c"), []byte("missing"), []byte("\xa4nope")) // unknown method
			b.request([]byte("c"), []byte("dunder"), []byte("\xa4echo"), []byte{0x90}, []byte("\x81\xa3__x\x01"))
			b.request([]byte("c"), []byte("ok"), []byte("\xa4echo")) // 1 frame: no args
			if secure {
				m := b.reply("ok")
				if _, exc := decodeSingle(t, m); exc != nil {
					t.Fatalf("echo raised %v", exc)
				}
				return
			}
			want := map[string]string{"bad": "TypeError", "missing": "AttributeError", "dunder": "TypeError", "ok": ""}
			for range want { // replies come in any order
				m := b.next(workerRecvTimeout)
				_, exc := decodeSingle(t, m)
				class := want[string(m.RequestID)]
				if (exc == nil) != (class == "") || (exc != nil && exc.Class != class) {
					t.Fatalf("request %s: exception %v, want class %q", m.RequestID, exc, class)
				}
			}
		})
	}
}

type boomError struct{ msg string }

func (e *boomError) Error() string { return e.msg }

func TestWorkerErrorsAndPanics(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "Err")
	mustOK(t, svc.Register("value_error", func(context.Context) error {
		return &Error{Code: InvalidArgument, Class: "ValueError", Message: "ValueError('boom!')"}
	}))
	mustOK(t, svc.Register("plain", func(context.Context) (int, error) { return 0, errors.New("plain failure") }))
	mustOK(t, svc.Register("typed", func(context.Context) (int, error) { return 0, fmt.Errorf("wrapped: %w", &boomError{"kaboom"}) }))
	mustOK(t, svc.Register("panic", func(context.Context) (int, error) { panic("oh no") }))
	mustOK(t, svc.Register("unencodable", func(context.Context) (any, error) { return make(chan int), nil }))
	startWorker(t, b, svc)
	b.expectReady()
	tests := []struct{ fn, class, repr, tb string }{
		{"value_error", "ValueError", "ValueError('boom!')", "worker_test.go"},
		{"plain", "Exception", "Exception('plain failure')", "worker_test.go"},
		{"typed", "BoomError", "BoomError('wrapped: kaboom')", "worker_test.go"},
		{"panic", "RuntimeError", "RuntimeError('panic: oh no')", "worker_test.go"},
		{"unencodable", "TypeError", "cannot encode result of type chan int", ""},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			_, exc := decodeSingle(t, b.call(tt.fn, tt.fn, nil, nil))
			if exc == nil || exc.Class != tt.class || !strings.Contains(exc.Repr, tt.repr) || !strings.Contains(exc.Traceback, tt.tb) {
				t.Fatalf("%s raised %#v, want %s %q with traceback mentioning %q", tt.fn, exc, tt.class, tt.repr, tt.tb)
			}
		})
	}
}

func TestWorkerGetInterfaces(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "GI")
	mustOK(t, Func2(svc, "add", func(_ context.Context, a, b int) (int, error) { return a + b, nil }, WithDoc("Add two ints."), WithParams("a", "b")))
	startWorker(t, b, svc)
	b.expectReady()
	got, exc := decodeSingle(t, b.call("gi", getInterfacesName, nil, nil))
	if exc != nil {
		t.Fatal(exc)
	}
	m := got.(map[string]any)
	add := m["add"].(map[string]any)
	if add["doc"] != "Add two ints." || add["signature"] != "(a: int, b: int) -> int" {
		t.Fatalf("get_interfaces add = %v", add)
	}
	if _, ok := m[getInterfacesName]; !ok || len(m) != 2 {
		t.Fatalf("get_interfaces = %v, want add and itself", m)
	}
}

// collectStream reads a stream's replies until its end or error marker.
func collectStream(t testing.TB, b *fakeBackend, rid string) (items []any, exc *codec.Exception) {
	t.Helper()
	for {
		m := b.reply(rid)
		kind, payload := wire.ClassifyReply(m.Body)
		switch kind {
		case wire.ReplyStreamItem:
			v, err := codec.Decode(payload)
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, v)
		case wire.ReplyStreamEnd:
			return items, nil
		case wire.ReplyStreamError:
			exc, err := codec.DecodeTriple(payload)
			if err != nil {
				t.Fatal(err)
			}
			return items, exc
		default:
			t.Fatalf("stream reply kind %v", kind)
		}
	}
}

func TestWorkerStreams(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "S")
	mustOK(t, Func1(svc, "count", countSeq))
	mustOK(t, svc.Register("boom", func(context.Context) iter.Seq2[string, error] {
		return func(yield func(string, error) bool) {
			if yield("one", nil) {
				yield("", &Error{Code: InvalidArgument, Class: "ValueError", Message: "ValueError('boom!')"})
			}
		}
	}))
	mustOK(t, svc.Register("panics", func(context.Context) iter.Seq[any] {
		return func(yield func(any) bool) {
			yield("x")
			panic("mid-stream")
		}
	}))
	mustOK(t, svc.Register("writer", func(ctx context.Context, n int, sw *StreamWriter) error {
		for i := range n {
			if err := sw.Send(fmt.Sprint("item", i)); err != nil {
				return err
			}
		}
		if n == 2 {
			return NewException("ValueError", "two")
		}
		return nil
	}))
	startWorker(t, b, svc)
	b.expectReady()
	for _, tt := range []struct {
		n     int
		class string
	}{{0, ""}, {3, ""}, {2, "ValueError"}} {
		t.Run(fmt.Sprint("writer", tt.n), func(t *testing.T) {
			body, _ := codec.EncodeRequestBody("writer", []any{tt.n}, nil)
			rid := fmt.Sprint("w", tt.n)
			b.request([]byte("cl"), []byte(rid), body...)
			items, exc := collectStream(t, b, rid)
			if len(items) != tt.n || (exc == nil) != (tt.class == "") || (exc != nil && exc.Class != tt.class) {
				t.Fatalf("writer(%d): items %v, exception %v", tt.n, items, exc)
			}
		})
	}
	for _, n := range []int{0, 3, 10000} {
		t.Run(fmt.Sprint("count", n), func(t *testing.T) {
			body, _ := codec.EncodeRequestBody("count", []any{n}, nil)
			rid := fmt.Sprint("c", n)
			b.request([]byte("cl"), []byte(rid), body...)
			items, exc := collectStream(t, b, rid)
			if exc != nil || len(items) != n {
				t.Fatalf("count(%d): %d items, exception %v", n, len(items), exc)
			}
			for i, v := range items {
				if v != int64(i) {
					t.Fatalf("item %d = %v", i, v)
				}
			}
		})
	}
	t.Run("error mid-stream", func(t *testing.T) {
		body, _ := codec.EncodeRequestBody("boom", nil, nil)
		b.request([]byte("cl"), []byte("boom"), body...)
		items, exc := collectStream(t, b, "boom")
		if len(items) != 1 || exc == nil || exc.Class != "ValueError" {
			t.Fatalf("boom: items %v, exception %v", items, exc)
		}
	})
	t.Run("panic mid-stream", func(t *testing.T) {
		body, _ := codec.EncodeRequestBody("panics", nil, nil)
		b.request([]byte("cl"), []byte("p"), body...)
		items, exc := collectStream(t, b, "p")
		if len(items) != 1 || exc == nil || exc.Class != "RuntimeError" || !strings.Contains(exc.Traceback, "worker_test.go") {
			t.Fatalf("panics: items %v, exception %#v", items, exc)
		}
	})
}

// collectHuge reads HugeData replies and returns the chunks.
func collectHuge(t testing.TB, b *fakeBackend, rid string) [][]byte {
	t.Helper()
	var chunks [][]byte
	for {
		kind, payload := wire.ClassifyReply(b.reply(rid).Body)
		switch kind {
		case wire.ReplyHugeChunk:
			chunks = append(chunks, payload)
		case wire.ReplyHugeEnd:
			return chunks
		default:
			t.Fatalf("huge reply kind %v", kind)
		}
	}
}

func TestWorkerHuge(t *testing.T) {
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(i * 7 % 251)
	}
	for _, comp := range []string{"gzip", "zstd", "bzip2", "xz"} {
		t.Run(comp, func(t *testing.T) {
			b := newFakeBackend(t)
			svc := mustService(t, "H")
			mustOK(t, Func1(svc, "blob", func(_ context.Context, n int) (HugeValue, error) { return Huge(blob[:n]), nil }))
			mustOK(t, Func1(svc, "auto", func(_ context.Context, n int) ([]byte, error) { return blob[:n], nil }))
			startWorker(t, b, svc, WithHugeData(comp, 1, 1000))
			b.expectReady()
			for _, fn := range []string{"blob", "auto"} {
				body, _ := codec.EncodeRequestBody(fn, []any{len(blob)}, nil)
				b.request([]byte("cl"), []byte(fn), body...)
				chunks := collectHuge(t, b, fn)
				if comp == "gzip" && !bytes.HasPrefix(chunks[0], []byte{0x1f, 0x8b, 0x08, 0x00}) {
					t.Fatalf("first chunk %x, want a gzip header with FLG 0", chunks[0][:10])
				}
				for i, c := range chunks[:len(chunks)-2] {
					if len(c) != 1000 {
						t.Fatalf("chunk %d is %d bytes, want 1000", i, len(c))
					}
				}
				if len(chunks[len(chunks)-1]) != 0 {
					t.Fatalf("last chunk is %d bytes, want the empty chunk", len(chunks[len(chunks)-1]))
				}
				raw, err := chunk.Join(chunks, chunk.WithCompression(comp))
				if err != nil {
					t.Fatal(err)
				}
				var got []byte
				mustOK(t, codec.Unmarshal(raw, &got))
				if !bytes.Equal(got, blob) {
					t.Fatalf("%s: value differs (%d bytes)", fn, len(got))
				}
			}
			// just under the auto threshold: a single reply
			got, exc := decodeSingle(t, b.call("small", "auto", []any{1000}, nil))
			if exc != nil || len(got.([]byte)) != 1000 {
				t.Fatalf("auto(1000) = %d bytes, %v", len(got.([]byte)), exc)
			}
		})
	}
}

func TestWorkerCapacity(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "Cap")
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	mustOK(t, svc.Register("block", func(ctx context.Context) (string, error) {
		started <- struct{}{}
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}))
	startWorker(t, b, svc, WithCapacity(1))
	if r := b.expectReady(); r.Capacity != 1 {
		t.Fatalf("READY capacity %d, want 1", r.Capacity)
	}
	body, _ := codec.EncodeRequestBody("block", nil, nil)
	b.request([]byte("c"), []byte("first"), body...)
	<-started
	b.request([]byte("c"), []byte("second"), body...)
	_, exc := decodeSingle(t, b.reply("second"))
	if exc == nil || exc.Repr != "RuntimeError('Request count exceeds the maximum value(1)')" {
		t.Fatalf("over capacity: %v", exc)
	}
	close(release)
	if got, exc := decodeSingle(t, b.reply("first")); got != "done" || exc != nil {
		t.Fatalf("first = %v, %v", got, exc)
	}
}

func TestWorkerBudgetAndCancel(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "Ctx")
	mustOK(t, svc.Register("deadline", func(ctx context.Context) (float64, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return -1, nil
		}
		return time.Until(dl).Seconds(), nil
	}))
	cancelled := make(chan error, 1)
	waiting := make(chan struct{}, 2)
	mustOK(t, svc.Register("wait", func(ctx context.Context) error {
		waiting <- struct{}{}
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	}, WithExecutor(Inline)))
	startWorker(t, b, svc)
	b.expectReady()

	body, _ := codec.EncodeRequestBody("deadline", nil, nil)
	rid := wire.EncodeRequestID([]byte("base-id"), wire.RequestMeta{Budget: 2 * time.Second, MD: map[string]string{"traceparent": "00-x"}})
	b.request([]byte("c"), rid, body...)
	got, exc := decodeSingle(t, b.reply(string(rid)))
	if secs, ok := got.(float64); exc != nil || !ok || secs <= 0 || secs > 2 {
		t.Fatalf("deadline with 2s budget = %v, %v", got, exc)
	}
	if got, _ := decodeSingle(t, b.call("nobudget", "deadline", nil, nil)); got != float64(-1) {
		t.Fatalf("deadline without budget = %v, want -1", got)
	}

	// budget expiry: a TimeoutError reply
	body, _ = codec.EncodeRequestBody("wait", nil, nil)
	rid = wire.EncodeRequestID([]byte("short"), wire.RequestMeta{Budget: 50 * time.Millisecond})
	b.request([]byte("c"), rid, body...)
	if _, exc := decodeSingle(t, b.reply(string(rid))); exc == nil || exc.Class != "TimeoutError" {
		t.Fatalf("expired budget: %v, want TimeoutError", exc)
	}
	if err := <-cancelled; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler ctx error %v", err)
	}

	// CANCEL from the broker
	b.request([]byte("c"), []byte("tocancel"), body...)
	for range 2 { // the first wait call, then this one: CANCEL before it starts would be a no-op
		select {
		case <-waiting:
		case <-time.After(workerRecvTimeout):
			t.Fatal("the wait call did not start")
		}
	}
	b.send(wire.WorkerMessage{Command: wire.CmdCancel, Client: []byte("c"), RequestID: []byte("tocancel")}.Frames()...)
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx error %v, want Canceled", err)
		}
	case <-time.After(workerRecvTimeout):
		t.Fatal("CANCEL did not reach the handler")
	}
	// The cancelled call still ends with a final reply (gaterpc/2): the
	// broker holds its capacity until then.
	if _, exc := decodeSingle(t, b.reply("tocancel")); exc == nil {
		t.Fatal("cancelled call ended with a result, want an exception")
	}
}

func TestWorkerReconnects(t *testing.T) {
	t.Run("after DISCONNECT", func(t *testing.T) {
		b := newFakeBackend(t)
		startWorker(t, b, mustService(t, "R"))
		b.expectReady()
		first := b.wid
		b.send(nil, []byte(wire.WorkerHeader), []byte{byte(wire.CmdDisconnect)})
		b.expectReady()
		if bytes.Equal(first, b.wid) {
			t.Fatal("reconnected with the same routing id")
		}
	})
	t.Run("silent broker", func(t *testing.T) {
		b := newFakeBackend(t)
		b.mute = true
		startWorker(t, b, mustService(t, "R"), WithLiveness(3))
		b.expectReady()
		first := b.wid
		b.expectReady() // after 3 × 100ms of silence
		if bytes.Equal(first, b.wid) {
			t.Fatal("reconnected with the same routing id")
		}
	})
}

func TestWorkerShutdownDrains(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "D")
	release := make(chan struct{})
	started := make(chan struct{})
	mustOK(t, svc.Register("slow", func(context.Context) (string, error) {
		close(started)
		<-release
		return "finished", nil
	}))
	w := startWorker(t, b, svc)
	b.expectReady()
	body, _ := codec.EncodeRequestBody("slow", nil, nil)
	b.request([]byte("c"), []byte("slow"), body...)
	<-started
	done := make(chan error, 1)
	go func() { done <- w.Shutdown(workerTestCtx(t)) }()
	// wait until draining, then a new request is refused
	for !w.isDraining() {
		time.Sleep(time.Millisecond)
	}
	b.request([]byte("c"), []byte("late"), body...)
	if _, exc := decodeSingle(t, b.reply("late")); exc == nil || exc.Class != "ServiceUnAvailableError" {
		t.Fatalf("request during shutdown: %v", exc)
	}
	close(release)
	if got, _ := decodeSingle(t, b.reply("slow")); got != "finished" {
		t.Fatalf("in-flight call = %v", got)
	}
	m := b.next(workerRecvTimeout)
	if m.Command != wire.CmdDisconnect || len(m.Extra) != 1 {
		t.Fatalf("after drain: %v with %d extra frames, want DISCONNECT with 1", m.Command, len(m.Extra))
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func TestWorkerMiddlewareSeesEveryReply(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "MW")
	mustOK(t, Func1(svc, "count", countSeq))
	var mu sync.Mutex
	var kinds []ReplyKind
	var infos []Info
	mw := func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request, w ReplyWriter) error {
			mu.Lock()
			infos = append(infos, req.Info())
			mu.Unlock()
			return next.ServeRPC(ctx, req, ReplyWriterFunc(func(ctx context.Context, r *Reply) error {
				mu.Lock()
				kinds = append(kinds, r.Kind)
				mu.Unlock()
				return w.Send(ctx, r)
			}))
		})
	}
	startWorker(t, b, svc, WithMiddleware(mw))
	b.expectReady()
	body, _ := codec.EncodeRequestBody("count", []any{2}, nil)
	b.request([]byte("c"), []byte("s"), body...)
	collectStream(t, b, "s")
	decodeSingle(t, b.call("u", "missing", nil, nil))
	mu.Lock()
	defer mu.Unlock()
	want := []ReplyKind{ReplyStreamItem, ReplyStreamItem, ReplyStreamEnd, ReplySingle}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("middleware saw %v, want %v", kinds, want)
	}
	if infos[0] != (Info{Role: RoleWorker, Service: "MW", Method: "count"}) {
		t.Fatalf("Info = %+v", infos[0])
	}
}

// Process pool functions must exist in the child too: package level.
var (
	procSquare = MustProcessFunc("gate_test.square", func(_ context.Context, n int) (int, error) { return n * n, nil })
	procCrash  = MustProcessFunc("gate_test.crash", func(_ context.Context, code int) (int, error) {
		os.Exit(code)
		return 0, nil
	})
	procPID = MustProcessFunc("gate_test.pid", func(context.Context) (int, error) { return os.Getpid(), nil })
)

func TestWorkerProcessPool(t *testing.T) {
	pool, err := NewProcessPool(2)
	mustOK(t, err)
	t.Cleanup(func() { pool.Close() })
	b := newFakeBackend(t)
	svc := mustService(t, "P")
	mustOK(t, svc.Register("square", procSquare, WithExecutor(pool)))
	mustOK(t, svc.Register("crash", procCrash, WithExecutor(pool)))
	mustOK(t, svc.Register("pid", procPID, WithExecutor(pool)))
	if err := svc.Register("inline_on_pool", func(context.Context) error { return nil }, WithExecutor(pool)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("plain func on a ProcessPool: %v, want ErrInvalidOption", err)
	}
	startWorker(t, b, svc)
	b.expectReady()
	if got, exc := decodeSingle(t, b.call("sq", "square", []any{12}, nil)); got != int64(144) || exc != nil {
		t.Fatalf("square(12) = %v, %v", got, exc)
	}
	pid, _ := decodeSingle(t, b.call("pid", "pid", nil, nil))
	if pid == int64(os.Getpid()) {
		t.Fatal("pid ran in the parent process")
	}
	if _, exc := decodeSingle(t, b.call("bad", "square", []any{"x"}, nil)); exc == nil || exc.Class != "TypeError" {
		t.Fatalf("square('x'): %v, want TypeError", exc)
	}
	_, exc := decodeSingle(t, b.call("crash", "crash", []any{3}, nil))
	if exc == nil || exc.Class != "RuntimeError" || !strings.Contains(exc.Repr, "child process died") {
		t.Fatalf("crash: %v, want RuntimeError about the child", exc)
	}
	if got, exc := decodeSingle(t, b.call("sq2", "square", []any{5}, nil)); got != int64(25) || exc != nil {
		t.Fatalf("square(5) after a crash = %v, %v", got, exc)
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"Echo": "echo", "GetUser": "get_user", "HTTPStatus": "http_status", "CPU": "cpu", "Sum2Ints": "sum2_ints", "getX": "get_x"} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

type structSvc struct{ prefix string }

func (s *structSvc) Echo(_ context.Context, v string) (string, error) { return s.prefix + v, nil }
func (s *structSvc) GetUser(_ context.Context, id int) (map[string]any, error) {
	return map[string]any{"id": id}, nil
}
func (s *structSvc) NotRPC(x int) int { return x }
func (s *structSvc) MethodDocs() map[string]string {
	return map[string]string{"Echo": "Echo with a prefix."}
}

func TestRegisterStructAndValidation(t *testing.T) {
	svc := mustService(t, "St")
	mustOK(t, svc.RegisterStruct(&structSvc{prefix: "> "}))
	if got := svc.Methods(); !reflect.DeepEqual(got, []string{getInterfacesName, "echo", "get_user"}) {
		t.Fatalf("Methods() = %v", got)
	}
	if m := svc.lookup("echo"); m.doc != "Echo with a prefix." {
		t.Fatalf("echo doc %q", m.doc)
	}
	for name, fn := range map[string]any{
		"no ctx":       func(int) int { return 0 },
		"bad results":  func(context.Context) (int, int) { return 0, 0 },
		"not a func":   42,
		"three result": func(context.Context) (int, int, error) { return 0, 0, nil },
	} {
		if err := svc.Register("x", fn); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Register(%s) = %v, want ErrInvalidOption", name, err)
		}
	}
	if err := svc.Register("echo", echoMethod); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("duplicate Register = %v", err)
	}
	if err := svc.Register("_private", echoMethod); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Register(_private) = %v", err)
	}
	for _, n := range [][2]string{{"a:b", ""}, {"", ""}, {"Gate", ""}, {"ok", "has:colon"}} {
		if _, err := NewService(n[0], n[1]); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewService(%q, %q) = %v, want ErrInvalidOption", n[0], n[1], err)
		}
	}
}

func TestWorkerLifecycle(t *testing.T) {
	svc := mustService(t, "L")
	w, err := NewWorker("inproc://nowhere", svc)
	mustOK(t, err)
	mustOK(t, w.Close())
	mustOK(t, w.Close())
	if err := w.Serve(workerTestCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close = %v, want ErrClosed", err)
	}
	if err := w.Serve(workerTestCtx(t)); err == nil {
		t.Fatal("second Serve succeeded")
	}
	if _, err := NewWorker("", svc, WithHeartbeat(-time.Second)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("NewWorker with Heartbeat -1s = %v, want ErrInvalidOption", err)
	}
	// Serve ends when its ctx does.
	b := newFakeBackend(t)
	w2, err := NewWorker(b.endpoint, svc, WithZMQContext(b.zctx))
	mustOK(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w2.Serve(ctx) }()
	b.expectReady()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve after ctx cancel = %v, want context.Canceled", err)
	}
	if m := b.next(workerRecvTimeout); m.Command != wire.CmdDisconnect {
		t.Fatalf("after cancel: %v, want DISCONNECT", m.Command)
	}
}

// TestWorkerReusesGoroutines: serial calls are served by a goroutine that
// outlives its call, not by a new goroutine each.
func TestWorkerReusesGoroutines(t *testing.T) {
	b := newFakeBackend(t)
	svc := mustService(t, "G")
	mustOK(t, Func0(svc, "gid", func(context.Context) (string, error) {
		buf := make([]byte, 64)
		buf = buf[:runtime.Stack(buf, false)]
		id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
		return string(id), nil
	}))
	startWorker(t, b, svc)
	b.expectReady()
	const calls = 50
	seen := map[any]int{}
	for i := range calls {
		got, exc := decodeSingle(t, b.call(fmt.Sprint("g", i), "gid", nil, nil))
		if exc != nil {
			t.Fatalf("gid raised %v", exc)
		}
		seen[got]++
	}
	// A call may start a goroutine when it arrives before the previous
	// call's goroutine is back waiting; most must not.
	if len(seen) > calls/2 {
		t.Fatalf("%d serial calls ran on %d goroutines, want them reused", calls, len(seen))
	}
}
