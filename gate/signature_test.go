package gate

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"
)

func TestPySignature(t *testing.T) {
	type opts struct {
		Timeout float64 `msgpack:"timeout"`
		DryRun  bool
		Label   string
		Skip    int `msgpack:"-"`
	}
	type user struct{ Name string }
	tests := []struct {
		name   string
		fn     any
		params []string
		want   string
	}{
		{"no args", func(context.Context) error { return nil }, nil, "() -> None"},
		{"any in, any out", func(_ context.Context, v any) (any, error) { return v, nil }, []string{"value"}, "(value)"},
		{"typed", func(_ context.Context, a, b int) (int, error) { return a + b, nil }, []string{"a", "b"}, "(a: int, b: int) -> int"},
		{"unnamed", func(_ context.Context, s string, f float64) (bool, error) { return false, nil }, nil, "(arg1: str, arg2: float) -> bool"},
		{"args kwargs", func(_ context.Context, kw Kwargs, args ...any) (any, error) { return nil, nil }, nil, "(*args, **kwargs)"},
		{"named variadic", func(_ context.Context, sep string, parts ...string) (string, error) { return "", nil }, []string{"sep", "parts"}, "(sep: str, *parts: str) -> str"},
		{"keyword struct", func(_ context.Context, n int, o opts) error { return nil }, []string{"n"}, "(n: int, *, timeout: float = 0.0, dry_run: bool = False, label: str = '') -> None"},
		{"containers", func(_ context.Context, b []byte, l []int, m map[string]any, p *int) ([]any, error) { return nil, nil }, nil,
			"(arg1: bytes, arg2: list[int], arg3: dict[str, Any], arg4: int | None) -> list"},
		{"struct and time", func(_ context.Context, u user, at time.Time) (user, error) { return u, nil }, nil, "(arg1: user, arg2: datetime) -> user"},
		{"stream", func(_ context.Context, n int) (iter.Seq[int], error) { return nil, nil }, []string{"n"}, "(n: int) -> Iterator[int]"},
		{"stream2", func(_ context.Context) iter.Seq2[string, error] { return nil }, nil, "() -> Iterator[str]"},
		{"writer", func(_ context.Context, w *StreamWriter, n int) error { return nil }, []string{"n"}, "(n: int) -> Iterator"},
		{"huge", func(context.Context) (HugeValue, error) { return HugeValue{}, nil }, nil, "() -> HugeData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := mustService(t, "Sig")
			mustOK(t, svc.Register("m", tt.fn, WithParams(tt.params...)))
			if got := svc.lookup("m").signature; got != tt.want {
				t.Fatalf("signature = %q, want %q", got, tt.want)
			}
		})
	}
	svc := mustService(t, "Sig")
	if got := svc.lookup("get_interfaces").signature; got != "()" {
		t.Fatalf("get_interfaces signature = %q, want 0.2.12's ()", got)
	}
	mustOK(t, svc.Register("custom", func(context.Context) error { return nil }, WithSignature("(x) -> None"), WithParams("ignored")))
	if got := svc.lookup("custom").signature; got != "(x) -> None" {
		t.Fatalf("WithSignature: signature = %q", got)
	}
}

func TestWithParamsErrors(t *testing.T) {
	svc := mustService(t, "Sig")
	add := func(_ context.Context, a, b int) (int, error) { return a + b, nil }
	for _, names := range [][]string{{"a"}, {"a", "b", "c"}, {"a", "b c"}, {"", "b"}} {
		if err := svc.Register("add", add, WithParams(names...)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Register with WithParams%q = %v, want ErrInvalidOption", names, err)
		}
	}
}
