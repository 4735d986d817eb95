package codec

import (
	"bytes"
	"reflect"
	"testing"
)

// hookCelsius is only used by TestRegisterEncoder: the process-wide hook
// for it cannot change any other test's output.
type hookCelsius float64

func TestRegisterEncoder(t *testing.T) {
	before, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterEncoder(nil, nil); err == nil {
		t.Fatal("RegisterEncoder(nil, nil) = nil, want an error")
	}
	if err := RegisterEncoder(reflect.TypeFor[hookCelsius](), func(v any) (any, error) {
		return map[string]any{"celsius": float64(v.(hookCelsius))}, nil
	}); err != nil {
		t.Fatal(err)
	}
	want, _ := Marshal(map[string]any{"celsius": 21.5})
	for name, c := range map[string]*Codec{"codec made before": before, "default codec": std} {
		for _, v := range []any{hookCelsius(21.5), []any{hookCelsius(21.5)}} {
			got, err := c.Marshal(v)
			if err != nil {
				t.Fatalf("%s: Marshal(%v) = %v", name, v, err)
			}
			if !bytes.Contains(got, want) {
				t.Fatalf("%s: Marshal(%v) = %x, want it to contain %x", name, v, got, want)
			}
		}
	}
	// A codec's own hook wins over the process-wide one.
	own, err := New(EncodeAs(func(c hookCelsius) (any, error) { return "own", nil }))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := own.Marshal(hookCelsius(1))
	if w, _ := Marshal("own"); !bytes.Equal(got, w) {
		t.Fatalf("own hook: Marshal = %x, want %x", got, w)
	}
}
