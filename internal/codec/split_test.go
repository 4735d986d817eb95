package codec

import (
	"errors"
	"reflect"
	"testing"
)

// TestSplitValue splits a concatenation of values and refuses what is
// not one valid value.
func TestSplitValue(t *testing.T) {
	var b []byte
	want := []any{int64(1), "two", []any{int64(3)}, map[string]any{"k": nil}}
	for _, v := range want {
		enc, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, enc...)
	}
	for i := 0; len(b) > 0; i++ {
		v, rest, err := SplitValue(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(v)
		if err != nil || i >= len(want) || !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("value %d = %v (%v), want %v", i, got, err, want[i])
		}
		b = rest
	}
	for name, bad := range map[string][]byte{
		"empty":        nil,
		"never used":   {0xc1},
		"truncated":    {0xa3, 'a'},
		"invalid utf8": {0xa1, 0xff},
	} {
		if _, _, err := SplitValue(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestCountValues(t *testing.T) {
	three := []byte{0x01, 0xa1, 'x', 0x90}
	if n, err := CountValues(three); n != 3 || err != nil {
		t.Errorf("CountValues(3 values) = %d, %v", n, err)
	}
	if n, err := CountValues(append(three, 0xc1)); n != 3 || !errors.Is(err, ErrMalformed) {
		t.Errorf("CountValues(3 values + 0xc1) = %d, %v; want 3 and ErrMalformed", n, err)
	}
	if n, err := CountValues(nil); n != 0 || err != nil {
		t.Errorf("CountValues(nil) = %d, %v", n, err)
	}
}
