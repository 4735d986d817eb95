package gate

import (
	"context"
	"fmt"
	"testing"

	"github.com/gaterpc/gate/internal/codec"
)

// BenchmarkWorkerDispatch measures the worker's per-call overhead without
// sockets: body decode, argument binding, the call and reply encoding.
func BenchmarkWorkerDispatch(b *testing.B) {
	svc := mustService(b, "Bench")
	mustOK(b, Func2(svc, "add", func(_ context.Context, x, y int) (int, error) { return x + y, nil }, WithExecutor(Inline)))
	mustOK(b, svc.Register("echo", func(_ context.Context, v []byte) ([]byte, error) { return v, nil }, WithExecutor(Inline)))
	// The demo service's echo: every argument back in a map.
	mustOK(b, svc.Register("demo_echo", func(_ context.Context, kw Kwargs, args ...any) (map[string]any, error) {
		if args == nil {
			args = []any{}
		}
		if kw == nil {
			kw = Kwargs{}
		}
		return map[string]any{"args": args, "kwargs": map[string]any(kw)}, nil
	}, WithExecutor(Inline)))
	w, err := NewWorker("inproc://unused", svc)
	mustOK(b, err)
	discard := ReplyWriterFunc(func(context.Context, *Reply) error { return nil })
	run := func(b *testing.B, fn string, args []any) {
		body, err := codec.EncodeRequestBody(fn, args, nil)
		mustOK(b, err)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			req := &Request{Service: "Bench", Method: fn, Body: body}
			if err := w.dispatch(ctx, req, discard); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("add", func(b *testing.B) { run(b, "add", []any{1, 2}) })
	b.Run("demo-echo-64B", func(b *testing.B) { run(b, "demo_echo", []any{make([]byte, 64)}) })
	for _, size := range []int{128, 4096, 65536} {
		b.Run(fmt.Sprintf("echo-%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			run(b, "echo", []any{make([]byte, size)})
		})
	}
}

// BenchmarkWorkerRoundTrip measures a request through a worker's socket
// loop and back, against a raw ROUTER (no broker).
func BenchmarkWorkerRoundTrip(b *testing.B) {
	fb := newFakeBackend(b)
	svc := mustService(b, "Bench")
	mustOK(b, Func2(svc, "add", func(_ context.Context, x, y int) (int, error) { return x + y, nil }))
	startWorker(b, fb, svc)
	fb.expectReady()
	body, _ := codec.EncodeRequestBody("add", []any{1, 2}, nil)
	b.ReportAllocs()
	for b.Loop() {
		fb.request([]byte("c"), []byte("r"), body...)
		fb.reply("r")
	}
}
