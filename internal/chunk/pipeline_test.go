package chunk

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestPipelineRoundTrip: a pipelined Sender emits the same chunks, in the
// same order, as a synchronous one.
func TestPipelineRoundTrip(t *testing.T) {
	in := payload(3<<20, 9)
	for _, name := range []string{GzipName, ZstdName} {
		for _, size := range []int{1000, 64 << 10} {
			opts := []Option{WithCompression(name), WithChunkSize(size), WithCompressor(nil)}
			if name == GzipName {
				opts = append(opts, WithCompressor(Gzip{Now: frozenClock}))
			}
			want, err := Split(in, opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Split(in, append(opts, WithPipeline(2))...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s/%d: %d chunks, want %d", name, size, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s/%d: chunk %d differs", name, size, i)
				}
			}
		}
	}
}

// TestPipelineBounded: while emit is blocked, Write runs at most the
// pipeline's depth of chunks ahead.
func TestPipelineBounded(t *testing.T) {
	release := make(chan struct{})
	var emitted, started atomic.Int64
	s, err := NewSender(func(c []byte) error {
		if started.Add(1) == 1 {
			<-release
		}
		emitted.Add(1)
		return nil
	}, WithCompression(ZstdName), WithChunkSize(1000), WithPipeline(2))
	if err != nil {
		t.Fatal(err)
	}
	in := randBytes(1<<20, 3) // incompressible: about 1000 chunks
	wrote := make(chan error, 1)
	var n atomic.Int64
	go func() {
		for i := 0; i < len(in); i += 1000 {
			if _, err := s.Write(in[i:min(i+1000, len(in))]); err != nil {
				wrote <- err
				return
			}
			n.Add(1)
		}
		wrote <- s.Close()
	}()
	time.Sleep(200 * time.Millisecond) // let the writer run into the bound
	// One chunk is being emitted, two are queued, one is being filled;
	// the rest is the compressor's own buffer (a zstd block of up to 128
	// KiB): far from 1 MiB.
	if k := n.Load(); k > 256 {
		t.Fatalf("writer went %d KB ahead of a blocked emit", k)
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if emitted.Load() < 1000 {
		t.Fatalf("emitted %d chunks", emitted.Load())
	}
}

// TestPipelineEmitError: an emit error reaches Write or Close, nothing is
// emitted after it, and the emitting goroutine is gone (goleak).
func TestPipelineEmitError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int64
	s, err := NewSender(func([]byte) error {
		if calls.Add(1) == 3 {
			return boom
		}
		return nil
	}, WithCompression(ZstdName), WithChunkSize(1000), WithPipeline(2))
	if err != nil {
		t.Fatal(err)
	}
	in := randBytes(256<<10, 4)
	var werr error
	for i := 0; i < len(in) && werr == nil; i += 4096 {
		_, werr = s.Write(in[i:min(i+4096, len(in))])
	}
	cerr := s.Close()
	if !errors.Is(werr, boom) && !errors.Is(cerr, boom) {
		t.Fatalf("Write = %v, Close = %v; want %v", werr, cerr, boom)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("emit called %d times, want 3 (none after the error)", c)
	}
}

// TestPipelineAbort: Abort stops a pipelined Sender whose emit is slow and
// discards what is queued.
func TestPipelineAbort(t *testing.T) {
	var calls atomic.Int64
	s, err := NewSender(func([]byte) error {
		calls.Add(1)
		time.Sleep(10 * time.Millisecond)
		return nil
	}, WithCompression(ZstdName), WithChunkSize(1000), WithPipeline(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(randBytes(10<<10, 5)); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	if c := calls.Load(); c > 5 {
		t.Fatalf("emit called %d times after Abort, want at most the one running and the queue", c)
	}
	if _, err := NewSender(func([]byte) error { return nil }, WithPipeline(MaxPipeline+1)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("WithPipeline(%d): %v, want ErrInvalidOption", MaxPipeline+1, err)
	}
}
