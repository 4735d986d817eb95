package chunk

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strconv"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/gaterpc/gate/internal/codec"
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

// records20k is the msgpack encoding of a 20,000-item list of small maps,
// the kind of value whose gzip level-1 size docs/performance.md compares
// with Python's zlib.
func records20k(tb testing.TB) []byte {
	tb.Helper()
	l := make([]any, 20000)
	for i := range l {
		l[i] = map[string]any{"id": i, "name": "item-" + strconv.Itoa(i)}
	}
	b, err := codec.Marshal(l)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkGzipLibs compares compress/gzip with klauspost/compress/gzip
// (the Gzip writer) at levels 1..3: speed, and the compressed size as
// the outB metric.
func BenchmarkGzipLibs(b *testing.B) {
	for _, d := range []struct {
		name string
		in   []byte
	}{{"records20k", records20k(b)}, {"mixed8MiB", payload(8<<20, 1)}} {
		for lvl := 1; lvl <= 3; lvl++ {
			for _, lib := range []string{"stdlib", "klauspost", "zlib"} {
				b.Run(d.name+"/"+lib+"/"+strconv.Itoa(lvl), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(d.in)))
					var n int
					for b.Loop() {
						w := &countWriter{}
						var zw io.WriteCloser
						switch lib {
						case "stdlib":
							zw, _ = stdgzip.NewWriterLevel(w, lvl)
						case "klauspost":
							zw, _ = kgzip.NewWriterLevel(w, lvl)
						default: // Gzip's writer: C zlib
							zw, _ = Gzip{}.NewWriter(w, lvl)
						}
						_, _ = zw.Write(d.in)
						_ = zw.Close()
						n = w.n
					}
					b.ReportMetric(float64(n), "outB")
				})
			}
		}
	}
}

// TestGzipLevel1Size pins the reason for the gzip writer: at level 1 it
// compresses the 20k-record list as Python's zlib does (71,073 bytes),
// about 30% smaller than compress/gzip.
func TestGzipLevel1Size(t *testing.T) {
	in := records20k(t)
	var std, ours countWriter
	zw, _ := stdgzip.NewWriterLevel(&std, 1)
	_, _ = zw.Write(in)
	_ = zw.Close()
	gw, err := Gzip{}.NewWriter(&ours, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = gw.Write(in)
	_ = gw.Close()
	if ours.n >= std.n {
		t.Fatalf("Gzip level 1: %d bytes, compress/gzip %d; want smaller", ours.n, std.n)
	}
	t.Logf("20k records: %d bytes msgpack, compress/gzip %d (%d chunks), Gzip %d (%d chunks)",
		len(in), std.n, (std.n+999)/1000, ours.n, (ours.n+999)/1000)
}

// BenchmarkSendPipeline measures the HugeData sender as the worker runs
// it: compress a 16 MiB payload and hand every chunk to an emit that
// copies it (as the socket does), in 1000-byte chunks (0.2.12 peers) and
// in 256 KiB chunks, synchronously and pipelined.
func BenchmarkSendPipeline(b *testing.B) {
	in := payload(16<<20, 1)
	sink := make([]byte, 256<<10)
	emit := func(c []byte) error { copy(sink, c); return nil }
	for _, name := range []string{GzipName, ZstdName} {
		for _, v := range []struct {
			name  string
			size  int
			depth int
		}{{"1000B-sync", 1000, 0}, {"256KiB-sync", 256 << 10, 0}, {"256KiB-pipe2", 256 << 10, 2}} {
			b.Run(name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					s, err := NewSender(emit, WithCompression(name), WithChunkSize(v.size), WithPipeline(v.depth))
					if err != nil {
						b.Fatal(err)
					}
					for i := 0; i < len(in); i += 128 << 10 {
						if _, err := s.Write(in[i:min(i+128<<10, len(in))]); err != nil {
							b.Fatal(err)
						}
					}
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
