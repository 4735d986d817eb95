package gate

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gaterpc/gate/internal/codec"
)

// TestFastBinderMatchesReflection binds the same calls through a fast
// binder and through reflection and expects the same results and errors.
func TestFastBinderMatchesReflection(t *testing.T) {
	svc := mustService(t, "Fast")
	type entry struct {
		name string
		fn   any
	}
	fns := []entry{
		{"var", func(_ context.Context, args ...any) (any, error) { return args, nil }},
		{"kwvar", func(_ context.Context, kw Kwargs, args ...any) (map[string]any, error) {
			return map[string]any{"args": args, "kw": map[string]any(kw), "nilargs": args == nil, "nilkw": kw == nil}, nil
		}},
		{"bytes", func(_ context.Context, v []byte) ([]byte, error) { return v, nil }},
		{"str", func(_ context.Context, v string) (string, error) { return v, nil }},
		{"int", func(_ context.Context, v int) (int, error) { return v, nil }},
		{"i64", func(_ context.Context, v int64) (int64, error) { return v, nil }},
		{"f64", func(_ context.Context, v float64) (float64, error) { return v, nil }},
		{"bool", func(_ context.Context, v bool) (bool, error) { return v, nil }},
		{"any", func(_ context.Context, v any) (any, error) { return v, nil }},
		{"map", func(_ context.Context, v map[string]any) (map[string]any, error) { return v, nil }},
		{"err", func(_ context.Context, v string) error { return errors.New(v) }},
	}
	for _, e := range fns {
		mustOK(t, svc.Register(e.name, e.fn))
	}
	mustOK(t, Func2(svc, "add", func(_ context.Context, x, y int) (int, error) { return x + y, nil }))
	mustOK(t, Func1(svc, "u8", func(_ context.Context, x uint8) (uint8, error) { return x, nil }))
	mustOK(t, Func0(svc, "zero", func(context.Context) (string, error) { return "z", nil }))
	mustOK(t, Func3(svc, "three", func(_ context.Context, a string, b []byte, c float64) ([]any, error) { return []any{a, b, c}, nil }))
	argSets := [][]any{nil, {}, {"s"}, {[]byte("b")}, {[]byte{}}, {int64(7)}, {uint64(1 << 63)}, {-3}, {1.5}, {true}, {nil},
		{map[string]any{"a": int64(1)}}, {"a", []byte("b")}, {1, 2}, {1, 2, 3}, {"a", []byte("b"), 2.5}, {"a", "b", 2}, {300}}
	kwSets := []map[string]any{nil, {"k": "v"}}
	cdc, err := codec.New()
	mustOK(t, err)
	ctx := context.Background()
	for _, name := range svc.Methods() {
		m := svc.lookup(name)
		if name == getInterfacesName {
			continue
		}
		if m.fn.fast == nil {
			t.Errorf("%s: no fast binder", name)
			continue
		}
		slow := *m.fn
		slow.fast = nil
		for _, args := range argSets {
			for _, kw := range kwSets {
				body, err := codec.EncodeRequestBody(name, args, kw)
				mustOK(t, err)
				_, rargs, rkw, err := codec.DecodeRequestBody(body)
				mustOK(t, err)
				run := func(a *funcAdapter) (any, string) {
					in, err := a.bind(ctx, cdc, rargs, rkw)
					if err != nil {
						return nil, "bind: " + err.Error()
					}
					res, err := a.call(in)
					if err != nil {
						return res, "call: " + err.Error()
					}
					return res, ""
				}
				fr, fe := run(m.fn)
				sr, se := run(&slow)
				if fe != se || !reflect.DeepEqual(fr, sr) {
					t.Errorf("%s%v %v: fast = %#v, %q; reflection = %#v, %q", name, args, kw, fr, fe, sr, se)
				}
			}
		}
	}
}

// TestFastBinderPanicTraceback: a panic in a fast-bound method names the
// method's frame, not the binder's.
func TestFastBinderPanicTraceback(t *testing.T) {
	svc := mustService(t, "Fast")
	mustOK(t, Func1(svc, "boom", panicky))
	a := svc.lookup("boom").fn
	body, _ := codec.EncodeRequestBody("boom", []any{"x"}, nil)
	_, args, kw, _ := codec.DecodeRequestBody(body)
	cdc, _ := codec.New()
	in, err := a.bind(context.Background(), cdc, args, kw)
	mustOK(t, err)
	_, err = a.call(in)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Traceback, "panicky") || strings.Contains(e.Traceback, "bindFast") {
		t.Fatalf("err = %v, traceback:\n%s", err, e.Traceback)
	}
}

func panicky(_ context.Context, s string) (string, error) { panic(s) }
