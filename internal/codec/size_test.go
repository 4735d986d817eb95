package codec

import (
	"bytes"
	"testing"
)

func TestEncodedSize(t *testing.T) {
	values := []any{
		"", "hi", string(bytes.Repeat([]byte("s"), 31)), string(bytes.Repeat([]byte("s"), 32)),
		string(bytes.Repeat([]byte("s"), 300)), string(bytes.Repeat([]byte("s"), 70000)),
		[]byte{}, []byte("x"), bytes.Repeat([]byte{7}, 300), bytes.Repeat([]byte{7}, 70000),
	}
	for _, v := range values {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := EncodedSize(b[:min(len(b), 16)])
		if !ok || n != int64(len(b)) {
			t.Errorf("EncodedSize(%T of %d) = %d, %v; want %d, true", v, len(b), n, ok, len(b))
		}
	}
	for _, v := range []any{nil, 1, []any{1, 2}, map[string]any{"a": 1}, 1.5, true} {
		b, _ := Marshal(v)
		if n, ok := EncodedSize(b); ok {
			t.Errorf("EncodedSize(%v) = %d, true; want false", v, n)
		}
	}
	for _, p := range [][]byte{nil, {0xc4}, {0xc5, 1}, {0xc6, 0, 0, 1}, {0xdb}} {
		if n, ok := EncodedSize(p); ok {
			t.Errorf("EncodedSize(% x) = %d, true; want false (short header)", p, n)
		}
	}
}
