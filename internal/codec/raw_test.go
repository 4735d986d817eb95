package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The raw writers produce exactly what Marshal produces, at every length
// boundary, and the readers read it back.
func TestRawMatchesMarshal(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		want, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendStr(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendStr(%d bytes) = %x…, want %x…", n, got[:min(len(got), 8)], want[:min(len(want), 8)])
		}
		v, isStr, rest, err := ReadStrOrBin(want)
		if err != nil || !isStr || len(rest) != 0 || string(v) != s {
			t.Fatalf("ReadStrOrBin(str %d): %v %v %d", n, err, isStr, len(rest))
		}
		if want, _ = Marshal([]byte(s)); !bytes.Equal(AppendBin(nil, []byte(s)), want) {
			t.Fatalf("AppendBin(%d bytes) differs from Marshal", n)
		}
		arr := make([]any, min(n, 70000))
		for i := range arr {
			arr[i] = nil
		}
		want, _ = Marshal(arr)
		if got := AppendArrayHeader(nil, len(arr)); !bytes.HasPrefix(want, got) || len(want)-len(got) != len(arr) {
			t.Fatalf("AppendArrayHeader(%d) = %x", len(arr), got)
		}
		if k, _, err := ReadArrayHeader(want); err != nil || k != len(arr) {
			t.Fatalf("ReadArrayHeader(%d) = %d, %v", len(arr), k, err)
		}
	}
	if got, _ := EncodeResult([]string{"a"}); !bytes.Equal(ResultMap(AppendStrArray(nil, []string{"a"})), got) {
		t.Fatalf("ResultMap differs from EncodeResult")
	}
	if got, _ := EncodeException("E", "E('x')", "tb"); !bytes.Equal(ExceptionMap("E", "E('x')", "tb"), got) {
		t.Fatalf("ExceptionMap differs from EncodeException")
	}
	ok, _ := EncodeResult(1)
	bad, _ := EncodeException("E", "E()", "")
	if !HasNoException(ok) || HasNoException(bad) {
		t.Fatal("HasNoException")
	}
}

func TestReadUint(t *testing.T) {
	for _, v := range []int64{0, 127, 128, 255, 256, 65535, 65536, 1 << 40, 1<<62 - 1} {
		b, _ := Marshal(v)
		got, rest, err := ReadUint(b)
		if err != nil || got != v || len(rest) != 0 {
			t.Fatalf("ReadUint(%d) = %d, %v", v, got, err)
		}
	}
	for _, b := range [][]byte{nil, {0xff}, {0xd0, 0x80}, {0xcf, 0x40, 0, 0, 0, 0, 0, 0, 0}, {0xcd, 0x01}, {0xa1, 'x'}} {
		if _, _, err := ReadUint(b); !errors.Is(err, ErrRaw) {
			t.Errorf("ReadUint(%x) err = %v", b, err)
		}
	}
}
