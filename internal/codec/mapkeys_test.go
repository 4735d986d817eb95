package codec

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPyFloat(t *testing.T) {
	// Each want is Python 3's repr(float(x)).
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{1.0 / 3, "0.3333333333333333"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{1.5e-7, "1.5e-07"},
		{123456789012345.0, "123456789012345.0"},
		{1e15, "1000000000000000.0"},
		{1e16, "1e+16"},
		{1.2345e17, "1.2345e+17"},
		{1e100, "1e+100"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{math.SmallestNonzeroFloat64, "5e-324"},
		{math.NaN(), "nan"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
	}
	for _, tt := range tests {
		if got := pyFloat(tt.in); got != tt.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// stringer is an ext hook's value with a String method.
type stringer struct{ n int }

func (s stringer) String() string { return fmt.Sprintf("S%d", s.n) }

// celsiusKey is an ext hook's value of a numeric kind, without String.
type celsiusKey int

func TestDecodeMapKeys(t *testing.T) {
	hooks := mustNew(t,
		WithExtDecoder(1, func(p []byte) (any, error) { return stringer{int(p[0])}, nil }),
		WithExtDecoder(2, func(p []byte) (any, error) { return celsiusKey(p[0]), nil }),
		WithExtDecoder(3, func(p []byte) (any, error) { return []int{int(p[0])}, nil }),
		WithExtDecoder(4, func(p []byte) (any, error) { return struct{ n int }{int(p[0])}, nil }),
	)
	tests := []struct {
		name string
		c    *Codec
		in   string // a map, keys in this order
		want map[string]any
	}{
		{"int", std, "82 01 a1 61 d0 fe a1 62", map[string]any{"1": "a", "-2": "b"}},
		{"uint64", std, "81 cf ffffffffffffffff c0", map[string]any{"18446744073709551615": nil}},
		{"float", std, "83 cb3ff0000000000000 01 cb4341c37937e08000 02 cb3ee4f8b588e368f1 03",
			map[string]any{"1.0": int64(1), "1e+16": int64(2), "1e-05": int64(3)}},
		{"float32 widened", std, "81 ca3fc00000 01", map[string]any{"1.5": int64(1)}},
		{"nan", std, "81 cb7ff8000000000000 01", map[string]any{"nan": int64(1)}},
		{"bool and nil", std, "83 c3 01 c2 02 c0 03", map[string]any{"True": int64(1), "False": int64(2), "None": int64(3)}},
		{"bin", std, "81 c4026b31 01", map[string]any{"k1": int64(1)}},
		{"timestamp", std, "81 d6ff6553f100 01", map[string]any{"Timestamp(seconds=1700000000, nanoseconds=0)": int64(1)}},
		{"repeated int key keeps the last value", std, "82 01 01 01 02", map[string]any{"1": int64(2)}},
		{"repeated str key keeps the last value", std, "83 a161 01 02 02 a161 03", map[string]any{"a": int64(3), "2": int64(2)}},
		{"repeated nan key keeps the last value", std, "82 cb7ff8000000000000 01 cb7ff8000000000000 02", map[string]any{"nan": int64(2)}},
		{"nested", std, "81 a161 81 07 c3", map[string]any{"a": map[string]any{"7": true}}},
		{"hook Stringer", hooks, "81 d40105 01", map[string]any{"S5": int64(1)}},
		{"hook kind", hooks, "81 d40209 01", map[string]any{"9": int64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Decode(unhex(t, tt.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%s) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}

	errs := []struct {
		name, in, msg string
		c             *Codec
	}{
		{"int then str", "82 01 01 a131 02", `int64 1 and str "1"`, std},
		{"str then int", "82 a131 01 01 02", `str "1" and int64 1`, std},
		{"bin and str", "82 a161 01 c40161 02", `str "a" and bin "a"`, std},
		{"bool and str", "82 c3 01 a454727565 02", `bool true and str "True"`, std},
		{"nil and str", "82 a44e6f6e65 01 c0 02", `str "None" and nil`, std},
		{"float and str", "82 cb3ff0000000000000 01 a3312e30 02", `float64 1 and str "1.0"`, std},
		{"bin not UTF-8", "81 c401ff 01", "not valid UTF-8", std},
		{"array key", "81 90 01", "unhashable map key of type []interface {}", std},
		{"map key", "81 80 01", "unhashable map key of type map[string]interface {}", std},
		{"ext key", "81 d40a01 01", "unhashable map key of type codec.Ext", std},
		{"hook not comparable", "81 d40301 01", "unhashable map key of type []int", hooks},
		{"hook without String", "81 d40401 01", "has no String method", hooks},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Decode(unhex(t, tt.in))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decode(%s) = %v, want ErrMalformed saying %q", tt.in, err, tt.msg)
			}
			// Ordered maps keep the keys apart; a Go map cannot hold the
			// unhashable ones, which only a Map can carry.
			if _, err := mustNew(t, OrderedMaps()).Decode(unhex(t, tt.in)); err != nil && tt.c == std {
				t.Fatalf("OrderedMaps Decode(%s): %v", tt.in, err)
			}
		})
	}
}

// TestDecodeMapKeysLossless shows the two ways to keep keys that are not
// str: ordered maps and typed decoding.
func TestDecodeMapKeysLossless(t *testing.T) {
	b, err := Marshal(map[int]string{1: "one", -2: "minus two"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := mustNew(t, OrderedMaps()).Decode(b)
	if want := (Map{{int64(1), "one"}, {int64(-2), "minus two"}}); err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("OrderedMaps Decode = %#v, %v; want %#v", v, err, want)
	}
	var typed map[int]string
	if err := Unmarshal(b, &typed); err != nil || !reflect.DeepEqual(typed, map[int]string{1: "one", -2: "minus two"}) {
		t.Fatalf("Unmarshal into map[int]string = %#v, %v", typed, err)
	}
	var untyped any
	if err := Unmarshal(b, &untyped); err != nil || !reflect.DeepEqual(untyped, map[string]any{"1": "one", "-2": "minus two"}) {
		t.Fatalf("Unmarshal into any = %#v, %v", untyped, err)
	}
}

func TestDecodeMapHookSeesConvertedKeys(t *testing.T) {
	var seen []map[string]any
	c := mustNew(t, WithMapHook(func(m map[string]any) (any, error) {
		seen = append(seen, m)
		return m, nil
	}))
	if _, err := c.Decode(unhex(t, "81 01 81 c3 c0")); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"True": nil}, {"1": map[string]any{"True": nil}}}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("map hook saw %#v, want %#v", seen, want)
	}
}

func TestDecodeTimestampKeyNegative(t *testing.T) {
	// Python's msgpack.Timestamp keeps nanoseconds in [0, 1e9), as
	// time.Time's Unix and Nanosecond do.
	ts := time.Unix(-1, 500).UTC()
	b, err := Marshal(map[string]any{"x": ts})
	if err != nil {
		t.Fatal(err)
	}
	tb := b[3:] // the timestamp ext after the fixmap header and "x"
	v, err := Decode(append(append([]byte{0x81}, tb...), 0x01))
	if want := map[string]any{"Timestamp(seconds=-1, nanoseconds=500)": int64(1)}; err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("Decode = %#v, %v; want %#v", v, err, want)
	}
}

// TestUnmarshalUntypedMaps: Unmarshal gives every untyped map string keys,
// as Decode does, whether the target is any, map[string]any, []any or a
// struct field of type any.
func TestUnmarshalUntypedMaps(t *testing.T) {
	intKeys := map[string]any{"1": "one", "-2": "minus two"}
	m, _ := Marshal(map[int]string{1: "one", -2: "minus two"})
	arr, _ := Marshal([]any{map[int]string{1: "one", -2: "minus two"}})
	st, _ := Marshal(map[string]any{"M": map[int]string{1: "one", -2: "minus two"}, "L": []any{map[bool]int{true: 1}}})

	var asMap map[string]any
	if err := Unmarshal(m, &asMap); err != nil || !reflect.DeepEqual(asMap, intKeys) {
		t.Errorf("Unmarshal into map[string]any = %#v, %v", asMap, err)
	}
	var asSlice []any
	if err := Unmarshal(arr, &asSlice); err != nil || !reflect.DeepEqual(asSlice, []any{intKeys}) {
		t.Errorf("Unmarshal into []any = %#v, %v", asSlice, err)
	}
	var asStruct struct {
		M any
		L []any
	}
	if err := Unmarshal(st, &asStruct); err != nil || !reflect.DeepEqual(asStruct.M, intKeys) ||
		!reflect.DeepEqual(asStruct.L, []any{map[string]any{"True": int64(1)}}) {
		t.Errorf("Unmarshal into a struct = %#v, %v", asStruct, err)
	}

	// Colliding keys are an error on every route.
	clash := unhex(t, "82 01 01 a131 02")
	nested := append(unhex(t, "81 a14d"), clash...)
	var a any
	var mp map[string]any
	var s struct{ M any }
	for name, err := range map[string]error{
		"any":            Unmarshal(clash, &a),
		"map[string]any": Unmarshal(clash, &mp),
		"struct field":   Unmarshal(nested, &s),
	} {
		if err == nil || !strings.Contains(err.Error(), `both become the string key "1"`) {
			t.Errorf("Unmarshal(%s) = %v, want the collision error", name, err)
		}
	}

	// A map[string]any target of a value that is not a map fails as
	// msgpack/v5 fails; nil gives a nil map.
	if err := Unmarshal(arr, &mp); err == nil {
		t.Error("Unmarshal of an array into map[string]any succeeded")
	}
	mp = map[string]any{"x": 1}
	if err := Unmarshal([]byte{0xc0}, &mp); err != nil || mp != nil {
		t.Errorf("Unmarshal(nil) into map[string]any = %#v, %v; want nil", mp, err)
	}
}
