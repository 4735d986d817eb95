package gate

import (
	"context"
	"testing"

	"github.com/gaterpc/gate/internal/codec"
)

// BenchmarkBind measures argument binding and the call of a registered
// method, without the reply: the worker's cost between the decoded body
// and the result value.
func BenchmarkBind(b *testing.B) {
	payload := make([]byte, 64)
	cases := []struct {
		name string
		fn   any
		args []any
		kw   map[string]any
	}{
		{"demo-echo", func(_ context.Context, kw Kwargs, args ...any) (map[string]any, error) {
			return map[string]any{"args": args, "kwargs": map[string]any(kw)}, nil
		}, []any{payload}, nil},
		{"variadic-any", func(_ context.Context, args ...any) (any, error) { return args, nil }, []any{payload}, nil},
		{"bytes", func(_ context.Context, v []byte) ([]byte, error) { return v, nil }, []any{payload}, nil},
		{"string", func(_ context.Context, v string) (string, error) { return v, nil }, []any{"hello"}, nil},
		{"int2", func(_ context.Context, x, y int) (int, error) { return x + y, nil }, []any{1, 2}, nil},
		{"map", func(_ context.Context, m map[string]any) (map[string]any, error) { return m, nil }, []any{map[string]any{"a": int64(1)}}, nil},
		{"struct-kw", func(_ context.Context, v string, o struct{ N int }) (string, error) { return v, nil }, []any{"x"}, map[string]any{"n": 3}},
	}
	cdc, err := codec.New()
	mustOK(b, err)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			svc := mustService(b, "Bench")
			mustOK(b, svc.Register(tc.name, tc.fn))
			a := svc.lookup(tc.name).fn
			body, err := codec.EncodeRequestBody(tc.name, tc.args, tc.kw)
			mustOK(b, err)
			_, args, kwargs, err := codec.DecodeRequestBody(body)
			mustOK(b, err)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				in, err := a.bind(ctx, cdc, args, kwargs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := a.call(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
