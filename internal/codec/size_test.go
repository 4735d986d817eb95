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

func TestDecodeOwned(t *testing.T) {
	c, err := New(MaxBinLen(16), MaxStrLen(16))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xab}, 1000)
	b, _ := Marshal(big)
	if _, err := c.Decode(b); err == nil {
		t.Fatal("Decode of a 1000-byte bin under MaxBinLen 16 succeeded")
	}
	v, err := c.DecodeOwned(b)
	if err != nil {
		t.Fatalf("DecodeOwned: %v", err)
	}
	got := v.([]byte)
	if !bytes.Equal(got, big) || &got[0] != &b[len(b)-1000] || cap(got) != len(got) {
		t.Fatalf("DecodeOwned returned %d bytes (aliased: %v, cap %d); want a capped slice of the input", len(got), &got[0] == &b[len(b)-1000], cap(got))
	}
	var typed []byte
	if err := c.UnmarshalOwned(b, &typed); err != nil || &typed[0] != &b[len(b)-1000] {
		t.Fatalf("UnmarshalOwned(*[]byte) = %v, aliased %v", err, err == nil && &typed[0] == &b[len(b)-1000])
	}
	text := string(bytes.Repeat([]byte("t"), 1000))
	s, err := Marshal(text)
	if err != nil {
		t.Fatal(err)
	}
	var str string
	if err := c.UnmarshalOwned(s, &str); err != nil || str != text {
		t.Fatalf("UnmarshalOwned(*string) = %v", err)
	}
	type rec struct {
		Data []byte `msgpack:"data"`
	}
	r, _ := Marshal(rec{Data: big})
	var out rec
	if err := c.UnmarshalOwned(r, &out); err != nil || !bytes.Equal(out.Data, big) {
		t.Fatalf("UnmarshalOwned(*struct) = %v", err)
	}
	// Lengths are still checked against the input.
	if _, err := c.DecodeOwned(b[:len(b)-1]); err == nil {
		t.Fatal("DecodeOwned of a truncated bin succeeded")
	}
	// MaxEntries still applies.
	c2, _ := New(MaxEntries(2))
	arr, _ := Marshal([]any{1, 2, 3})
	if _, err := c2.DecodeOwned(arr); err == nil {
		t.Fatal("DecodeOwned ignored MaxEntries")
	}
}
