package chunk

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// frozen is the MTIME of the Python vectors.
var frozen = time.Unix(1700000000, 0)

func frozenClock() time.Time { return frozen }

var allFormats = []string{GzipName, ZstdName, Bzip2Name, XzName}

// payload returns n bytes that mix compressible runs with random blocks.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; {
		k := min(n-i, 1+r.IntN(4096))
		if r.IntN(2) == 0 {
			for j := range k {
				b[i+j] = byte(r.Uint32())
			}
		} else {
			c := byte(r.Uint32())
			for j := range k {
				b[i+j] = c + byte(j%7)
			}
		}
		i += k
	}
	return b
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func loadVectors(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/huge_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, h, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad vector line %q", line)
		}
		if h == "-" {
			v[name] = []byte{}
			continue
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("vector %s: %v", name, err)
		}
		v[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkChunks verifies the 0.2.12 chunk layout: data chunks of exactly size
// bytes, the last one possibly shorter, then one empty chunk if empty is set.
func checkChunks(t testing.TB, chunks [][]byte, size int, empty bool) {
	t.Helper()
	data := chunks
	if empty {
		if len(chunks) == 0 || len(chunks[len(chunks)-1]) != 0 {
			t.Fatalf("last chunk is not empty (%d chunks)", len(chunks))
		}
		data = chunks[:len(chunks)-1]
	}
	if len(data) == 0 {
		t.Fatal("no data chunks")
	}
	for i, c := range data {
		switch {
		case i < len(data)-1 && len(c) != size:
			t.Fatalf("chunk %d has %d bytes, want %d", i, len(c), size)
		case i == len(data)-1 && (len(c) == 0 || len(c) > size):
			t.Fatalf("last data chunk has %d bytes, want 1..%d", len(c), size)
		}
	}
}

// slowFormat reports whether name is one of the pure-Go encoders that run
// at about 1 MB/s (xz, bzip2), which tests feed less data under -race.
func slowFormat(name string) bool { return name == XzName || name == Bzip2Name }

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 999, 1000, 1001, 1 << 20}
	for _, name := range allFormats {
		for _, n := range sizes {
			if raceEnabled && slowFormat(name) && n == 1<<20 {
				n = 256 << 10
			}
			t.Run(name+"/"+strconv.Itoa(n), func(t *testing.T) {
				in := payload(n, uint64(n))
				chunks, err := Split(in, WithCompression(name))
				if err != nil {
					t.Fatalf("Split: %v", err)
				}
				checkChunks(t, chunks, DefaultChunkSize, true)
				got, sniffed := Sniff(chunks[0])
				if !sniffed || got != name {
					t.Fatalf("Sniff(%x) = %q, %v, want %q", chunks[0][:min(8, len(chunks[0]))], got, sniffed, name)
				}
				// The receiver sniffs, so it needs no configuration.
				out, err := Join(chunks)
				if err != nil {
					t.Fatalf("Join: %v", err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("Join = %d bytes, want %d bytes equal to input", len(out), len(in))
				}
			})
		}
	}
}

func TestPythonAliases(t *testing.T) {
	for _, tc := range []struct{ alias, name string }{{"bz2", Bzip2Name}, {"lzma", XzName}} {
		t.Run(tc.alias, func(t *testing.T) {
			in := payload(5000, 7)
			chunks, err := Split(in, WithCompression(tc.alias))
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := Sniff(chunks[0]); got != tc.name {
				t.Fatalf("Sniff = %q, want %q", got, tc.name)
			}
			// Configured alike, as a Python peer would be.
			out, err := Join(chunks, WithCompression(tc.alias))
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("Join = %d bytes, %v", len(out), err)
			}
		})
	}
}

// TestLarge streams 100 MB (16 MiB under the race detector, which makes
// compression about ten times slower) from a Sender straight into an
// Assembler.
func TestLarge(t *testing.T) {
	n := 100_000_000
	if raceEnabled {
		n = 16 << 20
	}
	for _, name := range []string{GzipName, ZstdName} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			a, err := NewAssembler()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			s, err := NewSender(a.Write, WithCompression(name))
			if err != nil {
				t.Fatal(err)
			}
			// Highly compressible blocks, stamped with their offset, and a
			// random block every 64.
			pattern := bytes.Repeat([]byte("gaterpc HugeData "), 64<<10/17+1)[:64<<10]
			rnd := payload(len(pattern), 1)
			var h uint32
			for i := 0; i < n; i += len(pattern) {
				b := pattern
				if (i/len(pattern))%64 == 0 {
					b = rnd
				}
				b = b[:min(len(b), n-i)]
				binary.LittleEndian.PutUint32(b, uint32(i))
				h = crc32.Update(h, crc32.IEEETable, b)
				if _, err := s.Write(b); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if s.Sent() > 2*DefaultLookahead && a.Size() == 0 {
				t.Errorf("Assembler decompressed nothing before Finish; want incremental output")
			}
			out, err := a.Finish()
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if len(out) != n || crc32.ChecksumIEEE(out) != h {
				t.Fatalf("Finish = %d bytes crc %08x, want %d bytes crc %08x", len(out), crc32.ChecksumIEEE(out), n, h)
			}
			t.Logf("%s: %d bytes -> %d compressed in %v", name, n, s.Sent(), time.Since(start))
		})
	}
}

func TestGoldenHugeRandom(t *testing.T) {
	v := loadVectors(t)
	var chunks [][]byte
	for i := range 7 {
		chunks = append(chunks, v["HUGE_RANDOM_CHUNK"+strconv.Itoa(i)])
	}
	wantSizes := []int{1000, 1000, 1000, 1000, 1000, 26, 0}
	for i, c := range chunks {
		if len(c) != wantSizes[i] {
			t.Fatalf("vector chunk %d has %d bytes, want %d", i, len(c), wantSizes[i])
		}
	}
	checkChunks(t, chunks, 1000, true)
	if got := v["HUGE_RANDOM_CHUNK7"]; string(got) != "HugeDataEND" {
		t.Fatalf("CHUNK7 = %q", got)
	}
	if name, ok := Sniff(chunks[0]); !ok || name != GzipName {
		t.Fatalf("Sniff = %q, %v", name, ok)
	}
	out, err := Join(chunks)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if len(out) != 5003 {
		t.Fatalf("decompressed %d bytes, want 5003", len(out))
	}
	if want := v["HUGE_RANDOM_PACKED_VALUE_FIRST8"]; !bytes.Equal(out[:8], want) {
		t.Fatalf("first 8 = %x, want %x", out[:8], want)
	}
	trailer := v["HUGE_RANDOM_LAST_DATA_CHUNK_LAST8_CRC32_ISIZE"]
	if crc := crc32.ChecksumIEEE(out); crc != binary.LittleEndian.Uint32(trailer) {
		t.Fatalf("crc32 = %08x, want trailer %x", crc, trailer)
	}
	// Byte-at-a-time and one-shot delivery give the same result.
	all := bytes.Join(chunks, nil)
	a, _ := NewAssembler()
	for i := range all {
		if err := a.Write(all[i : i+1]); err != nil {
			t.Fatalf("Write byte %d: %v", i, err)
		}
	}
	out2, err := a.Finish()
	if err != nil || !bytes.Equal(out2, out) {
		t.Fatalf("byte-wise Finish = %d bytes, %v", len(out2), err)
	}
	// Re-sent by us: same layout, same decompressed value.
	ours, err := Split(out, WithCompressor(Gzip{Now: frozenClock}))
	if err != nil {
		t.Fatal(err)
	}
	checkChunks(t, ours, 1000, true)
	if !bytes.Equal(ours[0][:10], v["HUGE_RANDOM_GZIP_HEADER10"]) {
		t.Fatalf("header = %x, want %x", ours[0][:10], v["HUGE_RANDOM_GZIP_HEADER10"])
	}
	last := ours[len(ours)-2]
	if !bytes.Equal(last[len(last)-8:], trailer) {
		t.Fatalf("trailer = %x, want %x", last[len(last)-8:], trailer)
	}
}

func TestGoldenHugeText(t *testing.T) {
	v := loadVectors(t)
	value := append([]byte{0xda, 0x13, 0x88}, bytes.Repeat([]byte("x"), 5000)...)
	if want := v["HUGE_TEXT_PACKED_VALUE_FIRST8"]; !bytes.Equal(value[:8], want) {
		t.Fatalf("value prefix %x, want %x", value[:8], want)
	}
	chunks, err := Split(value, WithCompressor(Gzip{Now: frozenClock}))
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 2 || len(chunks[1]) != 0 || len(chunks[0]) >= 1000 {
		t.Fatalf("chunk sizes %v, want [<1000 0]", chunkSizes(chunks))
	}
	c := chunks[0]
	if want := v["HUGE_TEXT_GZIP_HEADER10"]; !bytes.Equal(c[:10], want) {
		t.Fatalf("header = %x, want %x", c[:10], want)
	}
	if want := v["HUGE_TEXT_LAST_DATA_CHUNK_LAST8_CRC32_ISIZE"]; !bytes.Equal(c[len(c)-8:], want) {
		t.Fatalf("trailer = %x, want %x", c[len(c)-8:], want)
	}
	// The deflate stream comes from zlib with Python's parameters: the
	// bytes are the Python sender's, not only the framing.
	if want := v["HUGE_TEXT_FIRST_CHUNK_FIRST32"]; !bytes.Equal(c[:32], want) {
		t.Fatalf("first 32 bytes = %x, want Python's %x", c[:32], want)
	}
	zr, err := gzip.NewReader(bytes.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	std, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(std, value) {
		t.Fatalf("stdlib gunzip = %d bytes, %v", len(std), err)
	}
	if zr.Header.OS != 0xff || zr.Header.Name != "" || !zr.Header.ModTime.Equal(frozen) {
		t.Fatalf("stdlib header = %+v", zr.Header)
	}
	out, err := Join(chunks)
	if err != nil || !bytes.Equal(out, value) {
		t.Fatalf("Join = %d bytes, %v", len(out), err)
	}
}

func chunkSizes(chunks [][]byte) []int {
	s := make([]int, len(chunks))
	for i, c := range chunks {
		s[i] = len(c)
	}
	return s
}

func TestGzipHeader(t *testing.T) {
	tests := []struct {
		name  string
		level int
		xfl   byte
	}{
		{"level1", 1, 0x04},
		{"level9", 9, 0x02},
		{"level6", 6, 0x00},
		{"default", -1, 0x00},
		{"store", 0, 0x00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := payload(3000, 3)
			chunks, err := Split(in, WithCompressor(Gzip{Now: frozenClock}), WithLevel(tc.level))
			if err != nil {
				t.Fatal(err)
			}
			want := []byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0xf1, 0x53, 0x65, tc.xfl, 0xff}
			if !bytes.Equal(chunks[0][:10], want) {
				t.Fatalf("header = %x, want %x", chunks[0][:10], want)
			}
			zr, err := gzip.NewReader(bytes.NewReader(bytes.Join(chunks, nil)))
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("stdlib gunzip = %d bytes, %v", len(got), err)
			}
		})
	}
	if _, err := NewSender(func([]byte) error { return nil }, WithLevel(10)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("NewSender(level 10) = %v, want ErrInvalidOption", err)
	}
}

func TestGzipDefaultClock(t *testing.T) {
	before := time.Now().Unix()
	chunks, err := Split([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	mtime := int64(binary.LittleEndian.Uint32(chunks[0][4:8]))
	if mtime < before || mtime > time.Now().Unix() {
		t.Fatalf("MTIME = %d, want now (%d)", mtime, before)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		ok   bool
	}{
		{"gzip", "1f8b0800", GzipName, true},
		{"gzip-short", "1f8b", GzipName, true},
		{"bzip2", "425a6839", Bzip2Name, true},
		{"xz", "fd377a585a000004", XzName, true},
		{"xz-short", "fd377a58", "", false},
		{"zstd", "28b52ffd2400", ZstdName, true},
		{"empty", "", "", false},
		{"one", "1f", "", false},
		{"text", "48656c6c6f", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tc.in)
			got, ok := Sniff(b)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Sniff(%s) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestChunkSizeOption(t *testing.T) {
	in := payload(50_000, 9)
	for _, size := range []int{MinChunkSize, 333, 4096, 1 << 16} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			chunks, err := Split(in, WithChunkSize(size), WithEmptyChunk(false))
			if err != nil {
				t.Fatal(err)
			}
			checkChunks(t, chunks, size, false)
			out, err := Join(chunks)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("Join = %d bytes, %v", len(out), err)
			}
		})
	}
	if _, err := NewSender(func([]byte) error { return nil }, WithChunkSize(9)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("WithChunkSize(9): %v, want ErrInvalidOption", err)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want error
	}{
		{"unknown", []Option{WithCompression("snappy")}, ErrUnknownCompressor},
		{"maxsize", []Option{WithMaxSize(0)}, ErrInvalidOption},
		{"maxcompressed", []Option{WithMaxCompressedSize(-1)}, ErrInvalidOption},
		{"lookahead", []Option{WithLookahead(MinLookahead - 1)}, ErrInvalidOption},
		{"bzip2-level", []Option{WithCompression(Bzip2Name), WithLevel(12)}, ErrInvalidOption},
		{"xz-level", []Option{WithCompression(XzName), WithLevel(12)}, ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSender(func([]byte) error { return nil }, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewSender: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewSender(nil); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("NewSender(nil): %v", err)
	}
	if _, err := NewAssembler(WithMaxSize(-5)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("NewAssembler(WithMaxSize(-5)): %v", err)
	}
	// nil options are ignored.
	if _, err := NewAssembler(nil, WithCompressor(nil)); err != nil {
		t.Fatalf("NewAssembler(nil): %v", err)
	}
}

func TestSenderEmitError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	s, err := NewSender(func([]byte) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	}, WithLevel(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Write(payload(200_000, 1))
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want boom", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, boom) {
		t.Fatalf("second Write = %v, want boom", err)
	}
	if err := s.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want boom", err)
	}
	if calls != 2 {
		t.Fatalf("emit called %d times after failing, want 2", calls)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
}

func TestSenderAbort(t *testing.T) {
	for _, name := range allFormats {
		t.Run(name, func(t *testing.T) {
			var n int
			s, err := NewSender(func(c []byte) error { n += len(c); return nil }, WithCompression(name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte("partial")); err != nil {
				t.Fatal(err)
			}
			before := n
			s.Abort()
			s.Abort()
			if n != before {
				t.Fatalf("Abort emitted %d bytes", n-before)
			}
			if _, err := s.Write([]byte("x")); !errors.Is(err, ErrClosed) {
				t.Fatalf("Write after Abort = %v", err)
			}
		})
	}
}

func TestReceiveErrors(t *testing.T) {
	valid := map[string][]byte{}
	for _, name := range allFormats {
		chunks, err := Split(payload(20_000, 5), WithCompression(name), WithEmptyChunk(false))
		if err != nil {
			t.Fatal(err)
		}
		valid[name] = bytes.Join(chunks, nil)
	}
	g := valid[GzipName]
	badCRC := bytes.Clone(g)
	badCRC[len(badCRC)-8] ^= 0xff
	badSize := bytes.Clone(g)
	badSize[len(badSize)-1] ^= 0x01
	badData := bytes.Clone(g)
	badData[len(badData)/2] ^= 0x55

	type tc struct {
		name   string
		chunks [][]byte
		opts   []Option
		want   error
	}
	tests := []tc{
		{"no-chunks", nil, nil, ErrEmpty},
		{"only-empty", [][]byte{{}, {}}, nil, ErrEmpty},
		{"garbage", [][]byte{[]byte("hello, world")}, nil, ErrCorrupt},
		{"short-garbage", [][]byte{{0x01}}, nil, ErrCorrupt},
		{"gzip-magic-only", [][]byte{{0x1f, 0x8b}}, nil, ErrTruncated},
		{"gzip-crc", [][]byte{badCRC}, nil, ErrCorrupt},
		{"gzip-isize", [][]byte{badSize}, nil, ErrCorrupt},
		{"gzip-data", [][]byte{badData}, nil, ErrCorrupt},
		{"gzip-trailing", [][]byte{g, []byte("HugeDataEND")}, nil, ErrCorrupt},
		{"compressed-cap", [][]byte{g}, []Option{WithMaxCompressedSize(int64(len(g) - 1))}, ErrTooLarge},
		{"size-cap", [][]byte{g}, []Option{WithMaxSize(19_999)}, ErrTooLarge},
	}
	for _, name := range allFormats {
		v := valid[name]
		tests = append(tests,
			tc{name + "-truncated-tail", [][]byte{v[:len(v)-1]}, nil, ErrTruncated},
			tc{name + "-truncated-half", [][]byte{v[:len(v)/2]}, nil, ErrTruncated},
			tc{name + "-truncated-header", [][]byte{v[:8]}, nil, ErrTruncated},
		)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Join(tc.chunks, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Join = %d bytes, %v; want %v", len(out), err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "chunk: ") {
				t.Fatalf("error %q lacks the chunk: prefix", err)
			}
		})
	}
	// A corrupt stream of one of the other formats is ErrCorrupt (or, if
	// the damage hits a length, ErrTruncated), never success.
	for _, name := range []string{ZstdName, Bzip2Name, XzName} {
		t.Run(name+"-flipped", func(t *testing.T) {
			v := bytes.Clone(valid[name])
			v[len(v)/2] ^= 0x55
			_, err := Join([][]byte{v})
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("Join = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestAssemblerLifecycle(t *testing.T) {
	chunks, err := Split([]byte("value"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAssembler()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if err := a.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	if a.Format() != GzipName || a.Received() != int64(len(chunks[0])) {
		t.Fatalf("Format, Received = %q, %d", a.Format(), a.Received())
	}
	out, err := a.Finish()
	if err != nil || string(out) != "value" {
		t.Fatalf("Finish = %q, %v", out, err)
	}
	if _, err := a.Finish(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Finish = %v", err)
	}
	if err := a.Write([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Finish = %v", err)
	}
	a.Close()

	b, _ := NewAssembler()
	b.Write(chunks[0][:5])
	b.Close()
	b.Close()
	if _, err := b.Finish(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Finish after Close = %v", err)
	}
	// Errors are sticky.
	c, _ := NewAssembler(WithMaxCompressedSize(3))
	if err := c.Write([]byte("abcd")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write = %v", err)
	}
	if _, err := c.Finish(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Finish after error = %v", err)
	}
}

// TestIncremental checks that the Assembler decompresses while chunks arrive
// and that its compressed buffer stays bounded by the lookahead.
func TestIncremental(t *testing.T) {
	for _, name := range allFormats {
		t.Run(name, func(t *testing.T) {
			// Enough compressed bytes to pass the lookahead a few times
			// (once for the slow encoders under -race).
			in := payload(3<<19, 11)
			if raceEnabled && slowFormat(name) {
				in = randBytes(MinLookahead+MinLookahead/4, 11)
			}
			a, err := NewAssembler(WithLookahead(MinLookahead))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			maxBuf := 0
			s, err := NewSender(func(c []byte) error {
				if err := a.Write(c); err != nil {
					return err
				}
				maxBuf = max(maxBuf, cap(a.in.buf))
				return nil
			}, WithCompression(name), WithChunkSize(4096))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(in); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if a.Size() == 0 {
				t.Errorf("only %d of %d bytes decompressed before Finish", a.Size(), len(in))
			}
			if limit := 2 * (MinLookahead + 2*4096); maxBuf > limit {
				t.Errorf("compressed buffer reached %d bytes, want <= %d", maxBuf, limit)
			}
			out, err := a.Finish()
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("Finish = %d bytes, %v", len(out), err)
			}
		})
	}
}

// zeroReader yields n zero bytes.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

// bomb returns name-compressed zeros: total bytes made of members of size
// member each (formats that accept concatenated streams keep the test fast).
func bomb(t testing.TB, name string, total, member int64) []byte {
	t.Helper()
	c, _ := Lookup(name)
	var one bytes.Buffer
	level := 9
	if name == XzName {
		level = 6 // 8 MiB dictionary
	}
	zw, err := c.NewWriter(&one, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, &zeroReader{member}); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(one.Bytes(), int(total/member))
}

func TestBomb(t *testing.T) {
	tests := []struct {
		name          string
		format        string
		total, member int64
		maxSize       int64
		slack         int64 // decoder state and compressed input allowed beyond maxSize
	}{
		{"gzip-1GiB-multistream", GzipName, 1 << 30, 1 << 20, 4 << 20, 8 << 20},
		{"gzip-32MiB-single", GzipName, 32 << 20, 32 << 20, 4 << 20, 8 << 20},
		{"gzip-1GiB-cap-64MiB", GzipName, 1 << 30, 1 << 20, 64 << 20, 8 << 20},
		{"zstd-1GiB", ZstdName, 1 << 30, 4 << 20, 4 << 20, 48 << 20},
		{"bzip2-1GiB", Bzip2Name, 1 << 30, 1 << 20, 4 << 20, 48 << 20},
		{"xz-1GiB", XzName, 1 << 30, 1 << 20, 2 << 20, 48 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxSize := tc.maxSize
			z := bomb(t, tc.format, tc.total, tc.member)
			t.Logf("%d bytes of zeros as %d compressed bytes", tc.total, len(z))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			a, err := NewAssembler(WithMaxSize(maxSize))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for c := range slicesChunk(z, DefaultChunkSize) {
				if err = a.Write(c); err != nil {
					break
				}
			}
			if err == nil {
				_, err = a.Finish()
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("rejected after %v, %d bytes allocated: %v", time.Since(start), alloc, err)
			// The output blocks are never copied and stop at maxSize+1
			// bytes; the rest is decoder state (zstd/xz windows, bzip2
			// tables) and the compressed input.
			if a.alloc > maxSize+1 {
				t.Fatalf("output blocks hold %d bytes, want <= %d", a.alloc, maxSize+1)
			}
			if limit := uint64(maxSize + tc.slack); alloc > limit {
				t.Fatalf("allocated %d bytes, want <= %d (the cap plus %d)", alloc, limit, tc.slack)
			}
		})
	}
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// identity is a custom compressor without a magic number.
type identity struct{}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func (identity) NewWriter(w io.Writer, level int) (io.WriteCloser, error) {
	return nopWriteCloser{w}, nil
}

func (identity) NewReader(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }

func TestRegister(t *testing.T) {
	Register("identity-test", identity{})
	if _, ok := Lookup("identity-test"); !ok {
		t.Fatal("Lookup after Register failed")
	}
	found := false
	for _, n := range Names() {
		found = found || n == "identity-test"
	}
	if !found {
		t.Fatalf("Names() = %v lacks identity-test", Names())
	}
	in := []byte("plain text payload, no magic")
	chunks, err := Split(in, WithCompression("identity-test"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Join(chunks, WithCompression("identity-test"))
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Join = %q, %v", out, err)
	}
	// A sniffed format still wins over the configured fallback.
	gz, _ := Split(in)
	out, err = Join(gz, WithCompression("identity-test"))
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Join(gzip) = %q, %v", out, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Register(\"\", nil) did not panic")
		}
	}()
	Register("", nil)
}

func TestXzDictCap(t *testing.T) {
	chunks, err := Split(payload(1000, 2), WithCompression(XzName), WithLevel(6), WithEmptyChunk(false))
	if err != nil {
		t.Fatal(err)
	}
	z := bytes.Join(chunks, nil)
	if _, err := (Xz{MaxDictCap: 4 << 20}).NewReader(bytes.NewReader(z)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("NewReader(8 MiB dict, cap 4 MiB) = %v, want ErrTooLarge", err)
	}
	zr, err := (Xz{}).NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("NewReader(8 MiB dict, default cap) = %v", err)
	}
	if out, err := io.ReadAll(zr); err != nil || !bytes.Equal(out, payload(1000, 2)) {
		t.Fatalf("ReadAll = %d bytes, %v", len(out), err)
	}
}

// TestPythonFormats decodes bz2 and lzma payloads made by CPython's modules
// with the settings a gaterpc 0.2.12 peer configured for them would use.
func TestPythonFormats(t *testing.T) {
	f, err := os.ReadFile("testdata/python_formats.txt")
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for line := range strings.Lines(string(f)) {
		if name, val, ok := strings.Cut(strings.TrimSpace(line), " "); ok && name[0] != '#' {
			v[name] = val
		}
	}
	wantLen, _ := strconv.ParseInt(v["PY_VALUE_LEN"], 16, 64)
	wantCRC, _ := strconv.ParseUint(v["PY_VALUE_CRC32"], 16, 32)
	for _, tc := range []struct{ key, format string }{{"PY_BZ2", Bzip2Name}, {"PY_LZMA", XzName}} {
		t.Run(tc.format, func(t *testing.T) {
			z, err := hex.DecodeString(v[tc.key])
			if err != nil {
				t.Fatal(err)
			}
			var chunks [][]byte
			for c := range slicesChunk(z, DefaultChunkSize) {
				chunks = append(chunks, c)
			}
			chunks = append(chunks, []byte{})
			a, _ := NewAssembler()
			defer a.Close()
			for _, c := range chunks {
				if err := a.Write(c); err != nil {
					t.Fatal(err)
				}
			}
			out, err := a.Finish()
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if a.Format() != tc.format || int64(len(out)) != wantLen || uint64(crc32.ChecksumIEEE(out)) != wantCRC {
				t.Fatalf("format %q, %d bytes crc %08x; want %q, %d bytes crc %08x",
					a.Format(), len(out), crc32.ChecksumIEEE(out), tc.format, wantLen, wantCRC)
			}
			if !bytes.Equal(out[:5003], append([]byte{0xda, 0x13, 0x88}, bytes.Repeat([]byte("x"), 5000)...)) {
				t.Fatal("decoded prefix differs from the msgpack str16 value")
			}
		})
	}
}

// binHint reads a msgpack bin32 header (the test's payloads), like
// codec.EncodedSize.
func binHint(p []byte) (int64, bool) {
	if len(p) < 5 || p[0] != 0xc6 {
		return 0, false
	}
	return 5 + int64(binary.BigEndian.Uint32(p[1:])), true
}

func bin32(data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	b[0] = 0xc6
	binary.BigEndian.PutUint32(b[1:], uint32(len(data)))
	return append(b, data...)
}

func TestAssemblerSizeHint(t *testing.T) {
	data := payload(10<<20, 9)
	chunks, err := Split(bin32(data), WithCompression(GzipName))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("one exact buffer", func(t *testing.T) {
		a, err := NewAssembler(WithSizeHint(binHint))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if err := a.Write(c); err != nil {
				t.Fatal(err)
			}
		}
		if len(a.blocks) != 0 || a.alloc != int64(5+len(data)) {
			t.Fatalf("output in %d blocks, %d bytes allocated; want one buffer of %d", len(a.blocks)+1, a.alloc, 5+len(data))
		}
		out, err := a.Finish()
		if err != nil || !bytes.Equal(out, bin32(data)) {
			t.Fatalf("Finish = %d bytes, %v", len(out), err)
		}
	})
	t.Run("announced size over the cap fails at once", func(t *testing.T) {
		a, err := NewAssembler(WithSizeHint(binHint), WithMaxSize(1<<20), WithLookahead(MinLookahead))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		for _, c := range chunks {
			if err = a.Write(c); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		if a.alloc > SizeHintLen {
			t.Fatalf("allocated %d output bytes before refusing, want <= %d", a.alloc, SizeHintLen)
		}
	})
	t.Run("a short hint continues in blocks", func(t *testing.T) {
		short := func([]byte) (int64, bool) { return 100, true }
		out, err := Join(chunks, WithSizeHint(short))
		if err != nil || !bytes.Equal(out, bin32(data)) {
			t.Fatalf("Join = %d bytes, %v", len(out), err)
		}
	})
	t.Run("payload shorter than the hint prefix", func(t *testing.T) {
		small, err := Split([]byte("tiny"), WithCompression(GzipName))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Join(small, WithSizeHint(binHint))
		if err != nil || string(out) != "tiny" {
			t.Fatalf("Join = %q, %v", out, err)
		}
	})
}
