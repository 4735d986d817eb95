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

// FuzzSplitValue: on any input SplitValue either fails with ErrMalformed
// or ErrLimit or returns a first value that validates on its own and a
// rest that together with it is exactly the input; CountValues agrees
// with splitting one value at a time, and counts valid values without
// allocating.
func FuzzSplitValue(f *testing.F) {
	seeds := msgpackSeeds(f)
	var all []byte
	for _, b := range seeds {
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add(append(append([]byte{}, all...), 0xc1))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := SplitValue(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) {
				t.Fatalf("SplitValue(%x): %v, not ErrMalformed or ErrLimit", b, err)
			}
			if v != nil || rest != nil {
				t.Fatalf("SplitValue(%x) failed but returned %x, %x", b, v, rest)
			}
		} else {
			if len(v) == 0 || len(v)+len(rest) != len(b) || &v[0] != &b[0] {
				t.Fatalf("SplitValue(%x) = %x + %x: not a split of the input", b, v, rest)
			}
			if cap(v) != len(v) {
				t.Fatalf("SplitValue(%x): value has room to grow into the rest (cap %d, len %d)", b, cap(v), len(v))
			}
			if verr := Validate(v); verr != nil {
				t.Fatalf("SplitValue(%x) returned %x, which does not validate: %v", b, v, verr)
			}
			if Validate(b) == nil && len(rest) != 0 {
				t.Fatalf("SplitValue(%x) of one valid value left %x", b, rest)
			}
		}
		want, rest := 0, b
		var werr error
		for len(rest) > 0 {
			if _, rest, werr = SplitValue(rest); werr != nil {
				break
			}
			want++
		}
		if n, err := CountValues(b); n != want || (err == nil) != (werr == nil) {
			t.Fatalf("CountValues(%x) = %d, %v; splitting gives %d, %v", b, n, err, want, werr)
		}
		if werr != nil {
			return // the error itself may allocate
		}
		if a := testing.AllocsPerRun(1, func() { _, _ = CountValues(b) }); a != 0 {
			t.Fatalf("CountValues(%x) allocated %v times", b, a)
		}
	})
}
