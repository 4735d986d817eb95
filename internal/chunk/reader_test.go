package chunk

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

// sourceOf returns a next function over chunks, then io.EOF (or end).
func sourceOf(chunks [][]byte, end error) func() ([]byte, error) {
	if end == nil {
		end = io.EOF
	}
	return func() ([]byte, error) {
		if len(chunks) == 0 {
			return nil, end
		}
		c := chunks[0]
		chunks = chunks[1:]
		return c, nil
	}
}

func readChunks(chunks [][]byte, opts ...Option) ([]byte, error) {
	r, err := NewReader(sourceOf(chunks, nil), opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestReaderRoundTrip(t *testing.T) {
	in := payload(300_000, 9)
	for _, name := range allFormats {
		for _, size := range []int{10, 1000, 256 << 10} {
			if slowFormat(name) && size < 1000 {
				continue
			}
			chunks, err := Split(in, WithCompression(name), WithChunkSize(size))
			if err != nil {
				t.Fatal(err)
			}
			// The first chunks cut shorter than SniffLen: the format is
			// sniffed across chunks.
			first := chunks[0]
			split := append([][]byte{first[:1], first[1:3], first[3:]}, chunks[1:]...)
			for _, cs := range [][][]byte{chunks, split} {
				// The configured compressor differs: the format is sniffed.
				out, err := readChunks(cs, WithCompression(GzipName))
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("%s/%d: read %d bytes, %v; want %d", name, size, len(out), err, len(in))
				}
			}
		}
	}
}

func TestReaderErrors(t *testing.T) {
	chunks, err := Split(payload(20_000, 5), WithEmptyChunk(false))
	if err != nil {
		t.Fatal(err)
	}
	g := bytes.Join(chunks, nil)
	badCRC := bytes.Clone(g)
	badCRC[len(badCRC)-8] ^= 0xff
	failed := errors.New("call failed")
	tests := []struct {
		name   string
		chunks [][]byte
		end    error
		opts   []Option
		want   error
	}{
		{"no-chunks", nil, nil, nil, ErrEmpty},
		{"only-empty", [][]byte{{}, {}}, nil, nil, ErrEmpty},
		{"garbage", [][]byte{[]byte("hello, world")}, nil, nil, ErrCorrupt},
		{"gzip-crc", [][]byte{badCRC}, nil, nil, ErrCorrupt},
		{"trailing", [][]byte{g, []byte("HugeDataEND")}, nil, nil, ErrCorrupt},
		{"truncated", [][]byte{g[:len(g)/2]}, nil, nil, ErrTruncated},
		{"compressed-cap", [][]byte{g[:100], g[100:]}, nil, []Option{WithMaxCompressedSize(int64(len(g) - 1))}, ErrTooLarge},
		{"size-cap", [][]byte{g}, nil, []Option{WithMaxSize(19_999)}, ErrTooLarge},
		{"source-error-first", nil, failed, nil, failed},
		{"source-error-mid", [][]byte{g[:len(g)/2]}, failed, nil, failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(sourceOf(tc.chunks, tc.end), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("read %d bytes, %v; want %v", len(out), err, tc.want)
			}
			if _, again := r.Read(make([]byte, 1)); !errors.Is(again, tc.want) {
				t.Fatalf("second Read = %v, want the same error", again)
			}
			_ = r.Close()
		})
	}
	t.Run("size-cap-exact", func(t *testing.T) {
		out, err := readChunks(chunks, WithMaxSize(20_000))
		if err != nil || len(out) != 20_000 {
			t.Fatalf("read %d, %v; a payload of exactly the cap is fine", len(out), err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r, _ := NewReader(sourceOf(chunks, nil))
		_ = r.Close()
		if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close = %v", err)
		}
	})
	if _, err := NewReader(nil); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("NewReader(nil) = %v", err)
	}
}

// TestReaderBomb: a Reader holds no output, so a bomb refused at the cap
// costs the decoder's state and one chunk, not the cap.
func TestReaderBomb(t *testing.T) {
	for _, tc := range []struct {
		format string
		slack  uint64
	}{{GzipName, 1 << 20}, {ZstdName, 16 << 20}} {
		t.Run(tc.format, func(t *testing.T) {
			const maxSize = 64 << 20
			z := bomb(t, tc.format, 256<<20, 4<<20)
			var chunks [][]byte
			for c := range slicesChunk(z, 256<<10) {
				chunks = append(chunks, c)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r, err := NewReader(sourceOf(chunks, nil), WithMaxSize(maxSize))
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.CopyBuffer(io.Discard, r, make([]byte, 64<<10))
			_ = r.Close()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) || n > maxSize {
				t.Fatalf("read %d bytes, %v; want ErrTooLarge within the cap", n, err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.slack {
				t.Fatalf("allocated %d bytes for a bomb refused at %d, want <= %d", alloc, maxSize, tc.slack)
			}
		})
	}
}
