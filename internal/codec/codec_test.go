package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMarshalScalars pins the encoding Python's msgpack picks for each
// value (by value, not by Go type).
func TestMarshalScalars(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, "c0"},
		{"true", true, "c3"},
		{"false", false, "c2"},
		{"0", 0, "00"},
		{"127", int64(127), "7f"},
		{"128", int16(128), "cc80"},
		{"255", uint64(255), "ccff"},
		{"256", 256, "cd0100"},
		{"65535", int32(65535), "cdffff"},
		{"65536", 65536, "ce00010000"},
		{"uint32 max", uint32(math.MaxUint32), "ceffffffff"},
		{"2^32", int64(1) << 32, "cf0000000100000000"},
		{"uint64 max", uint64(math.MaxUint64), "cfffffffffffffffff"},
		{"-1", -1, "ff"},
		{"-32", int8(-32), "e0"},
		{"-33", -33, "d0df"},
		{"-128", -128, "d080"},
		{"-129", -129, "d1ff7f"},
		{"-32768", -32768, "d18000"},
		{"-32769", -32769, "d2ffff7fff"},
		{"-2^31", int64(math.MinInt32), "d280000000"},
		{"-2^31-1", int64(math.MinInt32) - 1, "d3ffffffff7fffffff"},
		{"int64 min", int64(math.MinInt64), "d38000000000000000"},
		{"uint8 type small value", uint8(5), "05"},
		{"float64", 1.5, "cb3ff8000000000000"},
		{"float32 widened", float32(1.5), "cb3ff8000000000000"},
		{"float zero", 0.0, "cb0000000000000000"},
		{"empty str", "", "a0"},
		{"str31", strings.Repeat("x", 31), "bf" + strings.Repeat("78", 31)},
		{"str32", strings.Repeat("x", 32), "d920" + strings.Repeat("78", 32)},
		{"str256", strings.Repeat("x", 256), "da0100" + strings.Repeat("78", 256)},
		{"empty bin", []byte{}, "c400"},
		{"bin256", bytes.Repeat([]byte{1}, 256), "c50100" + strings.Repeat("01", 256)},
		{"byte array", [2]byte{1, 2}, "c4020102"},
		{"nil slice", []int(nil), "c0"},
		{"nil map", map[string]int(nil), "c0"},
		{"nil pointer", (*int)(nil), "c0"},
		{"pointer", func() *int { i := 300; return &i }(), "cd012c"},
		{"array16", make([]int, 16), "dc0010" + strings.Repeat("00", 16)},
		{"map sorted", map[string]int{"b": 2, "a": 1, "aa": 3}, "83a16101a2616103a16202"},
		{"map int keys sorted by encoding", map[int]string{-1: "m", 1: "p"}, "8201a170ffa16d"},
		{"ordered map", Map{{"b", 1}, {"a", 2}}, "82a16201a16102"},
		{"time seconds", time.Unix(1700000000, 0), "d6ff6553f100"},
		{"time nanos", time.Unix(1, 5), "d7ff0000001400000001"},
		{"time 96", time.Unix(-1, 0), "c70cff00000000ffffffffffffffff"},
		{"ext", Ext{Type: 5, Data: []byte{1, 2, 3}}, "c70305010203"},
		{"ext fixed", Ext{Type: 1, Data: []byte{9}}, "d40109"},
		{"raw", RawMessage{0x92, 0x01, 0x02}, "920102"},
		{"bin key", Bin("k"), "c4016b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.v)
			if err != nil {
				t.Fatalf("Marshal(%#v): %v", tt.v, err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("Marshal(%#v) = %x, want %x", tt.v, got, want)
			}
			checkRoundTrip(t, got)
		})
	}
}

type inner struct {
	N int `msgpack:"n"`
}

type sample struct {
	Name    string            `msgpack:"name"`
	Skip    string            `msgpack:"-"`
	Empty   string            `msgpack:"empty,omitempty"`
	Count   uint32            `msgpack:"count"`
	Ratio   float32           `msgpack:"ratio"`
	Data    []byte            `msgpack:"data"`
	Tags    map[string]string `msgpack:"tags"`
	Inner   *inner            `msgpack:"in"`
	inner                     // inlined: field "n"
	private int
}

func TestStructs(t *testing.T) {
	s := sample{Name: "x", Skip: "no", Count: 300, Ratio: 0.5, Data: []byte{1}, Tags: map[string]string{"z": "1", "a": "2"}, Inner: &inner{N: -1}, inner: inner{N: 7}, private: 9}
	got, err := Marshal(s) // the unexported field is not encoded
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "87 a46e616d65 a178 a5636f756e74 cd012c a5726174696f cb3fe0000000000000 a464617461 c40101 a474616773 82a161a132a17aa131 a2696e 81a16eff a16e 07")
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal(struct) = %x\nwant %x", got, want)
	}
	var back sample
	if err := Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	s.Skip, s.private = "", 0
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("Unmarshal = %+v, want %+v", back, s)
	}
}

func TestHooks(t *testing.T) {
	type celsius float64
	c := mustNew(t,
		EncodeAs(func(d time.Duration) (any, error) { return d.Seconds(), nil }),
		EncodeAs(func(c celsius) (any, error) { return "C" + strings.Repeat("!", int(c)), nil }),
		WithExtDecoder(7, func(p []byte) (any, error) { return "ext7:" + string(p), nil }),
		WithMapHook(func(m map[string]any) (any, error) {
			if v, ok := m["__dur__"]; ok {
				return time.Duration(v.(int64)), nil
			}
			return m, nil
		}),
	)
	got, err := c.Marshal([]any{1500 * time.Millisecond, celsius(2)})
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "92 cb3ff8000000000000 a3 43 21 21"); !bytes.Equal(got, want) {
		t.Fatalf("Marshal with hooks = %x, want %x", got, want)
	}
	v, err := c.Decode(unhex(t, "92 d40761 81a75f5f6475725f5f05"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{"ext7:a", time.Duration(5)}; !reflect.DeepEqual(v, want) {
		t.Fatalf("Decode with hooks = %#v, want %#v", v, want)
	}
	if _, err := New(MaxStrLen(0)); err == nil {
		t.Fatal("New(MaxStrLen(0)) succeeded")
	}
}

func TestDecodeTypes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"uint8 to int64", "cc80", int64(128)},
		{"uint64 big", "cfffffffffffffffff", uint64(math.MaxUint64)},
		{"int8", "d0df", int64(-33)},
		{"float32 widened", "ca3fc00000", 1.5},
		{"bin copy", "c4020102", []byte{1, 2}},
		{"str map", "81a161c0", map[string]any{"a": nil}},
		{"mixed keys", "82a16101c40162c3", map[string]any{"a": int64(1), "b": true}},
		{"int keys", "820102ffc2", map[string]any{"1": int64(2), "-1": false}},
		{"timestamp", "d6ff6553f100", time.Unix(1700000000, 0).UTC()},
		{"ext", "d50a0102", Ext{Type: 10, Data: []byte{1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(unhex(t, tt.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%s) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	small := mustNew(t, MaxStrLen(4), MaxBinLen(4), MaxEntries(2), MaxDepth(3))
	tests := []struct {
		name string
		c    *Codec
		in   string
		want error
	}{
		{"empty", std, "", ErrMalformed},
		{"trailing", std, "c0c0", ErrMalformed},
		{"reserved c1", std, "c1", ErrMalformed},
		{"truncated str", std, "a3616263"[:6], ErrMalformed},
		{"bin32 4GiB", std, "c6ffffffff", ErrLimit},
		{"bin32 in cap but past input", std, "c600001000", ErrMalformed},
		{"str32 huge", std, "dbffffffff", ErrLimit},
		{"array32 huge", std, "ddffffffff", ErrLimit},
		{"map32 huge", std, "dfffffffff", ErrLimit},
		{"array past input", std, "dd0000ffff00", ErrMalformed},
		{"ext32 huge", std, "c9ffffffff01", ErrLimit},
		{"invalid utf8", std, "a2c328", ErrMalformed},
		{"array key", std, "819000c0", ErrMalformed},
		{"map key", std, "818000c0", ErrMalformed},
		{"ext key", std, "81d40101c0", ErrMalformed},
		{"bad timestamp", std, "d7ffffffffffffffffff", ErrMalformed},
		{"small str cap", small, "a56162636465", ErrLimit},
		{"small bin cap", small, "c40501020304050", ErrLimit},
		{"small entries cap", small, "93010203", ErrLimit},
		{"small depth cap", small, "91919191c0", ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, _ := hex.DecodeString(tt.in)
			if _, err := tt.c.Decode(in); !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%s) err = %v, want %v", tt.in, err, tt.want)
			}
			if err := tt.c.Validate(in); !errors.Is(err, tt.want) && !(tt.name == "array key" || tt.name == "map key" || tt.name == "ext key") {
				t.Fatalf("Validate(%s) err = %v, want %v", tt.in, err, tt.want)
			}
			var v struct{}
			if err := tt.c.Unmarshal(in, &v); err == nil && tt.want != ErrMalformed {
				t.Fatalf("Unmarshal(%s) succeeded", tt.in)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	small := mustNew(t, MaxStrLen(4), MaxEntries(2), MaxDepth(3))
	type node struct{ Next *node }
	cyc := &node{}
	cyc.Next = cyc
	tests := []struct {
		name string
		c    *Codec
		v    any
		want error
	}{
		{"chan", std, make(chan int), ErrUnsupportedType},
		{"func", std, func() {}, ErrUnsupportedType},
		{"invalid utf8", std, "\xff", ErrMalformed},
		{"bad raw", std, RawMessage{0xc1}, ErrMalformed},
		{"cycle", std, cyc, ErrLimit},
		{"str cap", small, "abcde", ErrLimit},
		{"entries cap", small, []int{1, 2, 3}, ErrLimit},
		{"depth cap", small, []any{[]any{[]any{[]any{}}}}, ErrLimit},
		{"dunder kwarg", nil, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.c == nil {
				_, err = EncodeRequestBody("f", nil, map[string]any{"__client_id": 1})
			} else {
				_, err = tt.c.Marshal(tt.v)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUnmarshal(t *testing.T) {
	var a any
	if err := Unmarshal(unhex(t, "82a16101a162cd012c"), &a); err != nil || !reflect.DeepEqual(a, map[string]any{"a": int64(1), "b": int64(300)}) {
		t.Fatalf("Unmarshal into any = %#v, %v", a, err)
	}
	var raw RawMessage
	if err := Unmarshal(unhex(t, "920102"), &raw); err != nil || !bytes.Equal(raw, []byte{0x92, 1, 2}) {
		t.Fatalf("Unmarshal into RawMessage = %x, %v", raw, err)
	}
	var xs []int16
	if err := Unmarshal(unhex(t, "9201d1ff7f"), &xs); err != nil || !reflect.DeepEqual(xs, []int16{1, -129}) {
		t.Fatalf("Unmarshal into []int16 = %v, %v", xs, err)
	}
	var s string
	if err := Unmarshal(unhex(t, "01"), &s); err == nil {
		t.Fatal("Unmarshal int into string succeeded")
	}
}

func TestRequestBody(t *testing.T) {
	body, err := EncodeRequestBody("echo", []any{"a", 1}, map[string]any{"k": true})
	if err != nil {
		t.Fatal(err)
	}
	fn, args, kwargs, err := DecodeRequestBody(body)
	if err != nil || fn != "echo" || len(args) != 2 || len(kwargs) != 1 {
		t.Fatalf("DecodeRequestBody = %q, %x, %x, %v", fn, args, kwargs, err)
	}
	var s string
	var n int
	var k bool
	if Unmarshal(args[0], &s) != nil || Unmarshal(args[1], &n) != nil || Unmarshal(kwargs["k"], &k) != nil || s != "a" || n != 1 || !k {
		t.Fatalf("args decoded to %q, %d, %v", s, n, k)
	}
	fn, args, kwargs, err = DecodeRequestBody([][]byte{unhex(t, "a166")})
	if err != nil || fn != "f" || args != nil || kwargs != nil {
		t.Fatalf("one-frame body = %q, %v, %v, %v", fn, args, kwargs, err)
	}
	bad := []struct {
		name string
		body []string
	}{
		{"no frames", nil},
		{"four frames", []string{"a166", "90", "80", "80"}},
		{"func not str", []string{"c4016", "90", "80"}},
		{"func bin", []string{"c40166"}},
		{"func trailing", []string{"a166c0"}},
		{"args not array", []string{"a166", "80"}},
		{"args trailing", []string{"a166", "9001"}},
		{"args bad element", []string{"a166", "91c1"}},
		{"kwargs not map", []string{"a166", "90", "90"}},
		{"kwargs int key", []string{"a166", "90", "8101c0"}},
		{"kwargs dunder key", []string{"a166", "90", "81a25f5fc0"}},
		{"kwargs truncated", []string{"a166", "90", "81a16b"}},
		{"args huge", []string{"a166", "ddffffffff"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var frames [][]byte
			for _, f := range tt.body {
				b, _ := hex.DecodeString(f)
				frames = append(frames, b)
			}
			if _, _, _, err := DecodeRequestBody(frames); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) {
				t.Fatalf("DecodeRequestBody(%v) err = %v", tt.body, err)
			}
		})
	}
}

func TestDecodeReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		result  string
		exc     *Exception
		wantErr bool
	}{
		{"ok", "82a6726573756c742aa9657863657074696f6ec0", "2a", nil, false},
		{"exception first", "82a9657863657074696f6ec0a6726573756c742a", "2a", nil, false},
		{"missing keys", "80", "c0", nil, false},
		{"empty array exc", "82a6726573756c7401a9657863657074696f6e90", "01", nil, false},
		{"empty str exc", "82a6726573756c7401a9657863657074696f6ea0", "01", nil, false},
		{"false exc", "81a9657863657074696f6ec2", "c0", nil, false},
		{"str exc", "81a9657863657074696f6ea3626164", "c0", &Exception{Repr: "bad"}, false},
		{"triple", "81a9657863657074696f6e93a143a152a0", "c0", &Exception{Class: "C", Repr: "R"}, false},
		{"str8 key", "81d906726573756c7407", "07", nil, false},
		{"two-element exc", "81a9657863657074696f6e92a143a152", "", nil, true},
		{"non-str triple", "81a9657863657074696f6e93010203", "", nil, true},
		{"truthy int exc", "81a9657863657074696f6e01", "", nil, true},
		{"not a map", "92c0c0", "", nil, true},
		{"trailing", "80c0", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, exc, err := DecodeReply(unhex(t, tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("DecodeReply(%s) err = %v, want ErrMalformed", tt.in, err)
				}
				return
			}
			if err != nil || !bytes.Equal(result, unhex(t, tt.result)) || !reflect.DeepEqual(exc, tt.exc) {
				t.Fatalf("DecodeReply(%s) = %x, %+v, %v; want %s, %+v", tt.in, result, exc, err, tt.result, tt.exc)
			}
		})
	}
	if e := (&Exception{Class: "ValueError", Repr: "ValueError('x')"}); e.Error() != "ValueError: ValueError('x')" {
		t.Fatalf("Error() = %q", e.Error())
	}
	if _, err := DecodeTriple(unhex(t, "90")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeTriple([]) err = %v", err)
	}
}

// TestDecodeHostileAllocations checks that hostile length headers are
// refused before allocating.
func TestDecodeHostileAllocations(t *testing.T) {
	for _, in := range []string{"c6ffffffff", "c67fffffff", "dd7fffffff", "df7fffffff", "dbffffffff", "c97fffffff01", "c600ffffff00"} {
		b := unhex(t, in)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			if _, err := Decode(b); err == nil {
				t.Fatalf("Decode(%s) succeeded", in)
			}
			var v []byte
			if err := Unmarshal(b, &v); err == nil {
				t.Fatalf("Unmarshal(%s) succeeded", in)
			}
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Fatalf("Decode(%s) x10 allocated %d bytes", in, d)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustNew(t, EncodeAs(func(d time.Duration) (any, error) { return int64(d), nil }))
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				b, err := c.Marshal(sample{Name: "x", Count: uint32(i), Tags: map[string]string{"a": "b"}})
				if err != nil {
					t.Error(err)
					return
				}
				var s sample
				if err := c.Unmarshal(b, &s); err != nil || s.Count != uint32(i) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestResultBytes(t *testing.T) {
	for _, v := range []any{nil, "s", []byte("b"), int64(-5), []any{"a", map[string]any{"k": 1.5}}} {
		b, err := EncodeResult(v)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := ResultBytes(b)
		want, exc, err := DecodeReply(b)
		if !ok || exc != nil || err != nil || !bytes.Equal(raw, want) {
			t.Errorf("%#v: ResultBytes = %x, %v; DecodeReply = %x, %v, %v", v, raw, ok, want, exc, err)
		}
	}
	exc, _ := EncodeException("ValueError", "ValueError('x')", "")
	for _, b := range [][]byte{exc, {0x80}, []byte("\x82\xa6result\xa9exception\xc0"), {0x82, 0xa6}} {
		if raw, ok := ResultBytes(b); ok {
			t.Errorf("ResultBytes(%x) = %x, true", b, raw)
		}
	}
}
