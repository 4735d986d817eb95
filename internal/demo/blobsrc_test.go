package demo_test

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"testing"

	"github.com/gaterpc/gate/internal/demo"
)

// TestBlobSourceSplits checks that the stream does not depend on how the
// reads are split, and that gzip cannot shrink it.
func TestBlobSourceSplits(t *testing.T) {
	want := make([]byte, 100003)
	_, _ = demo.NewBlobSource().Read(want)
	src := demo.NewBlobSource()
	var got []byte
	r := rand.New(rand.NewPCG(1, 2))
	for len(got) < len(want) {
		p := make([]byte, min(r.IntN(20), len(want)-len(got)))
		n, err := src.Read(p)
		if err != nil || n != len(p) {
			t.Fatalf("Read(%d) = %d, %v", len(p), n, err)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("split reads differ from one read")
	}
	if bytes.Equal(want[:8], make([]byte, 8)) {
		t.Fatal("stream starts with zeros")
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(want)
	_ = zw.Close()
	if z.Len() < len(want) {
		t.Fatalf("gzip shrank the stream to %d of %d bytes", z.Len(), len(want))
	}
}

func BenchmarkBlobSource(b *testing.B) {
	p := make([]byte, 256<<10)
	b.SetBytes(int64(len(p)))
	s := demo.NewBlobSource()
	for i := 0; i < b.N; i++ {
		_, _ = s.Read(p)
	}
}

func BenchmarkBlobChaCha8(b *testing.B) {
	p := make([]byte, 256<<10)
	b.SetBytes(int64(len(p)))
	s := rand.NewChaCha8([32]byte{})
	for i := 0; i < b.N; i++ {
		_, _ = s.Read(p)
	}
}
