package chunk

import (
	"bytes"
	"strconv"
	"testing"
)

var benchSizes = []int{1 << 20, 16 << 20}

// BenchmarkSend measures compress+chunk of a mixed payload (about half of it
// random) into discarded 1000-byte chunks.
func BenchmarkSend(b *testing.B) {
	for _, name := range []string{GzipName, ZstdName} {
		for _, n := range benchSizes {
			b.Run(name+"/"+strconv.Itoa(n>>20)+"MiB", func(b *testing.B) {
				in := payload(n, 1)
				b.ReportAllocs()
				b.SetBytes(int64(n))
				for b.Loop() {
					s, err := NewSender(func([]byte) error { return nil }, WithCompression(name))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Write(in); err != nil {
						b.Fatal(err)
					}
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAssemble measures reassembly and decompression of the same
// payloads from 1000-byte chunks.
func BenchmarkAssemble(b *testing.B) {
	for _, name := range []string{GzipName, ZstdName} {
		for _, n := range benchSizes {
			b.Run(name+"/"+strconv.Itoa(n>>20)+"MiB", func(b *testing.B) {
				in := payload(n, 1)
				chunks, err := Split(in, WithCompression(name))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(n))
				for b.Loop() {
					a, err := NewAssembler()
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range chunks {
						if err := a.Write(c); err != nil {
							b.Fatal(err)
						}
					}
					out, err := a.Finish()
					if err != nil || len(out) != n {
						b.Fatalf("Finish = %d bytes, %v", len(out), err)
					}
				}
				b.StopTimer()
				if out, _ := Join(chunks); !bytes.Equal(out, in) {
					b.Fatal("round trip mismatch")
				}
			})
		}
	}
}
