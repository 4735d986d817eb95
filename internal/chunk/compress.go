package chunk

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	dsbzip2 "github.com/dsnet/compress/bzip2"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Names of the built-in compressors. "bz2" and "lzma" are registered as
// aliases of [Bzip2Name] and [XzName], because those are the module names a
// Python gaterpc peer is configured with.
const (
	GzipName  = "gzip"
	ZstdName  = "zstd"
	Bzip2Name = "bzip2"
	XzName    = "xz"
)

// Compressor creates streaming compressors and decompressors for one format.
// Implementations must be safe for concurrent use; each writer or reader they
// return is used by one goroutine at a time.
type Compressor interface {
	// NewWriter returns a writer that compresses into w at the given level.
	// Closing it flushes the stream's trailer to w but does not close w.
	// The meaning of level is format specific; an invalid level is an error.
	NewWriter(w io.Writer, level int) (io.WriteCloser, error)
	// NewReader returns a reader that decompresses r. It may read the stream
	// header from r before returning. Closing it releases its resources but
	// does not close r.
	NewReader(r io.Reader) (io.ReadCloser, error)
}

var registry = struct {
	sync.RWMutex
	m map[string]Compressor
}{m: map[string]Compressor{
	GzipName:  Gzip{},
	ZstdName:  Zstd{},
	Bzip2Name: Bzip2{},
	"bz2":     Bzip2{},
	XzName:    Xz{},
	"lzma":    Xz{},
}}

// Register makes c available under name to [WithCompression] and to the
// receiver's format detection (a sniffed format is looked up by its built-in
// name, so registering "gzip" replaces the gzip implementation). A later
// registration under the same name replaces the earlier one. Register panics
// if name is empty or c is nil, like [database/sql.Register]. It is safe for
// concurrent use.
func Register(name string, c Compressor) {
	if name == "" || c == nil {
		panic("chunk: Register with empty name or nil Compressor")
	}
	registry.Lock()
	registry.m[name] = c
	registry.Unlock()
}

// Lookup returns the compressor registered under name.
func Lookup(name string) (Compressor, bool) {
	registry.RLock()
	c, ok := registry.m[name]
	registry.RUnlock()
	return c, ok
}

// Names returns the registered compressor names, sorted.
func Names() []string {
	registry.RLock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	registry.RUnlock()
	sort.Strings(names)
	return names
}

// magics lists the stream signatures [Sniff] recognises.
var magics = []struct {
	name  string
	magic []byte
}{
	{GzipName, []byte{0x1f, 0x8b}},
	{Bzip2Name, []byte("BZh")},
	{XzName, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{ZstdName, []byte{0x28, 0xb5, 0x2f, 0xfd}},
}

// SniffLen is the number of leading bytes [Sniff] needs to recognise every
// built-in format.
const SniffLen = 6

// Sniff reports the built-in format whose magic number begins first, which
// should hold the first [SniffLen] bytes of a compressed payload (fewer bytes
// can still match the shorter magics). It recognises gzip (1f 8b),
// bzip2 ("BZh"), xz (fd 37 7a 58 5a 00) and zstd (28 b5 2f fd).
func Sniff(first []byte) (name string, ok bool) {
	for _, m := range magics {
		if bytes.HasPrefix(first, m.magic) {
			return m.name, true
		}
	}
	return "", false
}

// hasMagic reports whether name is a built-in format that Sniff recognises.
func hasMagic(name string) bool {
	for _, m := range magics {
		if m.name == name {
			return true
		}
	}
	return false
}

// Gzip is the RFC 1952 gzip compressor, compatible with the gaterpc 0.2.12
// sender: a single member with FLG 0 (no name), MTIME set from Now, XFL 04
// at level 1 and 02 at level 9, OS ff, and a CRC-32/ISIZE trailer. The
// deflate stream comes from the C zlib library (cgo, -lz) with Python's
// parameters (window 15, memLevel 8, default strategy), so the bytes are
// those of a Python sender using the same zlib; at level 1 that is about
// 30% smaller than Go's deflate implementations on msgpack data
// (docs/performance.md). Levels are -1 (default) and 0 (store) to 9.
// The reader is [compress/gzip]: it verifies CRC-32 and ISIZE and accepts
// concatenated members. The zero value uses [time.Now].
type Gzip struct {
	// Now supplies the header's MTIME; nil means time.Now.
	Now func() time.Time
	// Go selects github.com/klauspost/compress's deflate instead of
	// zlib's: about 1.6× as fast on msgpack data and far faster on
	// incompressible data (which it stores at memory speed where zlib's
	// level 1 still searches for matches), but about 40% larger on
	// compressible data. Gate workers use it towards gate clients, which
	// do not care about Python's bytes (docs/flow-control.md §5).
	Go bool
}

// NewWriter implements [Compressor].
func (g Gzip) NewWriter(w io.Writer, level int) (io.WriteCloser, error) {
	if level < -1 || level > 9 {
		return nil, fmt.Errorf("%w: gzip level %d", ErrInvalidOption, level)
	}
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	if !g.Go {
		return newZlibGzip(w, level, now())
	}
	zw, err := kgzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, fmt.Errorf("%w: gzip level %d", ErrInvalidOption, level)
	}
	// FLG 0 without Name/Comment/Extra and OS 255 by default; MTIME 0 for
	// times at or before the epoch.
	zw.ModTime = now()
	return zw, nil
}

// NewReader implements [Compressor].
func (Gzip) NewReader(r io.Reader) (io.ReadCloser, error) {
	return gzip.NewReader(r)
}

// DefaultZstdMaxWindow is the largest zstd window [Zstd] accepts by default
// when decoding. It bounds the decoder's history buffer.
const DefaultZstdMaxWindow = 64 << 20

// Zstd is the Zstandard compressor (github.com/klauspost/compress/zstd), for
// Go peers only: Python gaterpc has no zstd module. Levels follow the zstd
// command line (1 fastest … 22); 0 or less means the library default. Both
// directions run synchronously, without goroutines.
type Zstd struct {
	// MaxWindow caps the window a received frame may declare; 0 means
	// DefaultZstdMaxWindow.
	MaxWindow uint64
}

// NewWriter implements [Compressor]. Encoders are reused: a writer that
// closes without error returns its encoder (some 18 MB of state at the
// default level) to a pool for the next NewWriter at the same level.
func (Zstd) NewWriter(w io.Writer, level int) (io.WriteCloser, error) {
	if level <= 0 {
		level = 0
	}
	pool := zstdPool(level)
	if enc, ok := pool.Get().(*zstd.Encoder); ok {
		enc.Reset(w)
		return &zstdWriter{enc: enc, pool: pool}, nil
	}
	opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
	if level > 0 {
		opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	}
	enc, err := zstd.NewWriter(w, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrInvalidOption, err)
	}
	return &zstdWriter{enc: enc, pool: pool}, nil
}

// zstdPools holds a *sync.Pool of idle encoders per level.
var zstdPools sync.Map

func zstdPool(level int) *sync.Pool {
	if p, ok := zstdPools.Load(level); ok {
		return p.(*sync.Pool)
	}
	p, _ := zstdPools.LoadOrStore(level, &sync.Pool{})
	return p.(*sync.Pool)
}

// zstdWriter is a pooled encoder's writer.
type zstdWriter struct {
	enc  *zstd.Encoder
	pool *sync.Pool
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	if z.enc == nil {
		return 0, ErrClosed
	}
	return z.enc.Write(p)
}

// Close finishes the frame; the encoder goes back to the pool unless
// writing the frame failed.
func (z *zstdWriter) Close() error {
	if z.enc == nil {
		return ErrClosed
	}
	enc := z.enc
	z.enc = nil
	err := enc.Close()
	if err == nil {
		enc.Reset(nil) // drop the destination
		z.pool.Put(enc)
	}
	return err
}

// NewReader implements [Compressor].
func (z Zstd) NewReader(r io.Reader) (io.ReadCloser, error) {
	maxWindow := z.MaxWindow
	if maxWindow == 0 {
		maxWindow = DefaultZstdMaxWindow
	}
	zr, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, err
	}
	return zstdReader{zr}, nil
}

type zstdReader struct{ *zstd.Decoder }

func (z zstdReader) Close() error {
	z.Decoder.Close()
	return nil
}

// Bzip2 is the bzip2 compressor: github.com/dsnet/compress/bzip2 writes,
// [compress/bzip2] reads. Levels are 1 to 9 (block size in 100 kB); 0 or less
// means 6. Python gaterpc calls this module "bz2".
type Bzip2 struct{}

// NewWriter implements [Compressor].
func (Bzip2) NewWriter(w io.Writer, level int) (io.WriteCloser, error) {
	if level <= 0 {
		level = dsbzip2.DefaultCompression
	}
	zw, err := dsbzip2.NewWriter(w, &dsbzip2.WriterConfig{Level: level})
	if err != nil {
		return nil, fmt.Errorf("%w: bzip2 level %d: %w", ErrInvalidOption, level, err)
	}
	return zw, nil
}

// NewReader implements [Compressor].
func (Bzip2) NewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(bzip2.NewReader(r)), nil
}

// DefaultXzMaxDictCap is the largest LZMA2 dictionary [Xz] accepts by
// default when decoding (the size preset 9 uses).
const DefaultXzMaxDictCap = 64 << 20

// Xz is the xz (LZMA2) compressor from github.com/ulikunitz/xz, which Python
// calls "lzma". The level picks the dictionary size of the matching xz preset
// (0: 256 KiB … 9: 64 MiB); a negative level means 8 MiB. Streams carry a
// CRC-64 check, as Python's lzma module writes by default.
//
// The decoder allocates the dictionary that a block header declares. NewReader
// rejects a first block declaring more than MaxDictCap with [ErrTooLarge];
// later blocks are not checked, so prefer gzip or zstd for untrusted peers.
type Xz struct {
	// MaxDictCap caps the dictionary of the first block; 0 means
	// DefaultXzMaxDictCap.
	MaxDictCap int64
}

var xzDictCaps = [...]int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}

// NewWriter implements [Compressor].
func (Xz) NewWriter(w io.Writer, level int) (io.WriteCloser, error) {
	if level > 9 {
		return nil, fmt.Errorf("%w: xz level %d", ErrInvalidOption, level)
	}
	dictCap := 8 << 20
	if level >= 0 {
		dictCap = xzDictCaps[level]
	}
	zw, err := xz.WriterConfig{DictCap: dictCap, CheckSum: xz.CRC64}.NewWriter(w)
	if err != nil {
		return nil, fmt.Errorf("%w: xz: %w", ErrInvalidOption, err)
	}
	return zw, nil
}

// NewReader implements [Compressor].
func (x Xz) NewReader(r io.Reader) (io.ReadCloser, error) {
	limit := x.MaxDictCap
	if limit <= 0 {
		limit = DefaultXzMaxDictCap
	}
	var head bytes.Buffer
	if err := checkXzDict(io.TeeReader(r, &head), limit); err != nil {
		return nil, err
	}
	zr, err := xz.NewReader(io.MultiReader(&head, r))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(zr), nil
}

// checkXzDict reads the stream header and the first block header and checks
// the LZMA2 dictionary size it declares.
func checkXzDict(r io.Reader, limit int64) error {
	var hdr [12 + 1024]byte
	if _, err := io.ReadFull(r, hdr[:13]); err != nil {
		return err
	}
	if hdr[12] == 0 { // index: a stream without blocks
		return nil
	}
	size := (int(hdr[12]) + 1) * 4
	if _, err := io.ReadFull(r, hdr[13:12+size]); err != nil {
		return err
	}
	b := hdr[13 : 12+size-4] // flags … filters, without padding's CRC32
	if len(b) == 0 {
		return errors.New("xz: short block header")
	}
	flags := b[0]
	b = b[1:]
	varint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && len(b) > 0; i++ {
			c := b[0]
			b = b[1:]
			v |= uint64(c&0x7f) << (7 * i)
			if c&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			if _, ok := varint(); !ok {
				return errors.New("xz: bad block header")
			}
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || n > uint64(len(b)) {
			return errors.New("xz: bad filter flags")
		}
		props := b[:n]
		b = b[n:]
		if id == 0x21 && n == 1 {
			dict, err := lzma.DecodeDictCap(props[0])
			if err != nil {
				return err
			}
			if dict > limit {
				return fmt.Errorf("%w: xz dictionary of %d bytes exceeds %d", ErrTooLarge, dict, limit)
			}
		}
	}
	return nil
}

var (
	_ Compressor = Gzip{}
	_ Compressor = Zstd{}
	_ Compressor = Bzip2{}
	_ Compressor = Xz{}
)
