package chunk

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var genCorpus = flag.Bool("gen-corpus", false, "rewrite testdata/fuzz/FuzzAssembler seeds")

type fuzzSeed struct {
	data          []byte
	size, maxSize uint16
}

// fuzzSeeds returns the seed corpus.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	t.Helper()
	v := loadVectors(t)
	var random []byte
	for i := range 7 {
		random = append(random, v["HUGE_RANDOM_CHUNK"+strconv.Itoa(i)]...)
	}
	seeds := []fuzzSeed{
		{random, uint16(1000), uint16(0xffff)},
		{random, uint16(7), uint16(100)},
		{[]byte{}, uint16(1), uint16(1)},
		{[]byte("HugeDataEND"), uint16(3), uint16(10)},
		{[]byte{0x1f, 0x8b}, uint16(1), uint16(10)},
	}
	for _, name := range allFormats {
		chunks, err := Split(payload(3000, 4), WithCompression(name), WithEmptyChunk(false))
		if err != nil {
			t.Fatal(err)
		}
		z := bytes.Join(chunks, nil)
		seeds = append(seeds,
			fuzzSeed{z, uint16(1000), uint16(0xffff)},
			fuzzSeed{z, uint16(100), uint16(2000)},
			fuzzSeed{z[:len(z)-5], uint16(512), uint16(0xffff)},
		)
		bz := bomb(t, name, 1<<20, 1<<20)
		seeds = append(seeds, fuzzSeed{bz, uint16(1000), uint16(60000)})
	}
	return seeds
}

// TestGenFuzzCorpus checks that the committed seed corpus is what
// fuzzSeeds gives today; with -gen-corpus it rewrites it.
func TestGenFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzAssembler")
	if *genCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\nuint16(%d)\n", s.data, s.size, s.maxSize)
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if *genCorpus {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Compressed seeds embed clocks and random data, so only the shape
		// of the committed file is checked: present, in corpus format,
		// with the same chunk size and cap.
		got, err := os.ReadFile(path)
		tail := fmt.Sprintf("uint16(%d)\nuint16(%d)\n", s.size, s.maxSize)
		if err != nil || !strings.HasPrefix(string(got), "go test fuzz v1\n[]byte(") || !strings.HasSuffix(string(got), tail) {
			t.Errorf("seed %s is missing or stale (%v); regenerate with: go test -run TestGenFuzzCorpus -gen-corpus", path, err)
		}
	}
}

// FuzzAssembler feeds arbitrary payloads in arbitrary chunk sizes. It checks
// that the Assembler never panics, never returns more than the cap, fails
// only with this package's sentinels, and gives the same outcome however the
// payload is cut (chunks of size, with empty chunks between, versus one
// chunk).
func FuzzAssembler(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.data, s.size, s.maxSize)
	}
	sentinels := []error{ErrCorrupt, ErrTruncated, ErrTooLarge, ErrEmpty}
	class := func(err error) error {
		if err == nil {
			return nil
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return s
			}
		}
		return err
	}
	f.Fuzz(func(t *testing.T, data []byte, size, maxSize uint16) {
		limit := int64(maxSize) + 1
		opts := []Option{WithMaxSize(limit), WithMaxCompressedSize(1 << 20), WithLookahead(MinLookahead)}
		a, err := NewAssembler(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		step := int(size)%2048 + 1
		var werr error
		for rest := data; len(rest) > 0 && werr == nil; {
			k := min(step, len(rest))
			if werr = a.Write(rest[:k]); werr == nil && size&0x8000 != 0 {
				werr = a.Write(nil)
			}
			rest = rest[k:]
		}
		var out []byte
		err = werr
		if err == nil {
			out, err = a.Finish()
		}
		if int64(len(out)) > limit {
			t.Fatalf("output %d bytes over cap %d", len(out), limit)
		}
		if c := class(err); err != nil && !slicesContains(sentinels, c) {
			t.Fatalf("unexpected error %v", err)
		}
		whole, werr2 := Join([][]byte{data}, opts...)
		if class(err) != class(werr2) || !bytes.Equal(out, whole) {
			t.Fatalf("chunked (%d) = %d bytes, %v; whole = %d bytes, %v", step, len(out), err, len(whole), werr2)
		}
	})
}

func slicesContains(errs []error, e error) bool {
	for _, x := range errs {
		if x == e {
			return true
		}
	}
	return false
}
