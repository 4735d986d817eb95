package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
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

// BenchmarkAssembleBomb feeds decompression bombs (128 MiB of zeros,
// compressed, in 256 KiB chunks) to an Assembler capped at 32 MiB and
// reports the bytes allocated per refused bomb, also as a multiple of the
// cap (alloc/cap): the cap must cost the cap plus a small constant.
// "bin" starts with a msgpack bin32 header that announces just under the
// cap (the size-hint path), "raw" has no header.
func BenchmarkAssembleBomb(b *testing.B) {
	const limit, size = 32 << 20, 128 << 20
	for _, name := range []string{GzipName, ZstdName} {
		for _, shape := range []string{"bin", "raw"} {
			b.Run(name+"/"+shape, func(b *testing.B) {
				raw := make([]byte, size)
				if shape == "bin" {
					raw[0] = 0xc6
					binary.BigEndian.PutUint32(raw[1:], limit-5)
				}
				chunks, err := Split(raw, WithCompression(name), WithChunkSize(256<<10))
				if err != nil {
					b.Fatal(err)
				}
				raw = nil
				b.ReportAllocs()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				for b.Loop() {
					a, err := NewAssembler(WithCompression(name), WithMaxSize(limit), WithSizeHint(binHint))
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range chunks {
						if err = a.Write(c); err != nil {
							break
						}
					}
					if err == nil {
						_, err = a.Finish()
					}
					if !errors.Is(err, ErrTooLarge) {
						b.Fatalf("bomb: %v, want ErrTooLarge", err)
					}
					_ = a.Close()
				}
				runtime.ReadMemStats(&ms1)
				b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/limit, "alloc/cap")
			})
		}
	}
}
