package chunk

import (
	"errors"
	"fmt"
	"io"
)

// readStep bounds the output of one decompressor Read, which in turn bounds
// the input that Read may consume (see WithLookahead).
const readStep = 32 << 10

// Output block sizes: the first block is minBlock bytes, each next one
// twice the last, up to maxBlock. Blocks are never copied while the
// payload grows, so a payload refused at the cap has cost the cap plus at
// most one block, not the 1.5x of a doubling buffer and its garbage.
const (
	minBlock = 64 << 10
	maxBlock = 4 << 20
)

// maxStalls is how many empty reads in a row a decoder may return.
const maxStalls = 100

// errStarved is what the input buffer returns when a decoder reads past the
// data received so far before Finish. Decoders treat it as fatal.
var errStarved = errors.New("chunk: decoder starved")

// Assembler reassembles and decompresses a chunked payload. Feed it the chunks
// in order with Write, then call Finish for the decompressed bytes:
//
//	a, err := chunk.NewAssembler(chunk.WithMaxSize(64 << 20))
//	if err != nil { ... }
//	defer a.Close()
//	for c := range chunks {
//		if err := a.Write(c); err != nil { ... } // fails fast on caps and corruption
//	}
//	value, err := a.Finish()
//
// Empty chunks are ignored. The format is sniffed from the leading bytes
// ([Sniff]); if they match no built-in magic, the configured compressor is used
// (gzip by default, in which case the payload is rejected as [ErrCorrupt]).
// Decompression is incremental: once [WithLookahead] bytes are buffered, Write
// decompresses as far as it safely can, so the Assembler holds at most the
// lookahead plus one chunk of compressed input, plus the output so far. The
// output is kept in blocks that are never copied while it grows (or in one
// buffer of the size [WithSizeHint] learns), so a payload refused at the
// cap costs the cap plus one block; Finish joins the blocks into one slice.
// Output beyond [WithMaxSize] fails with [ErrTooLarge] before it is stored;
// compressed input beyond [WithMaxCompressedSize] fails likewise. Checksums
// (gzip CRC-32 and ISIZE, bzip2 CRC, xz and zstd checks) are verified.
//
// After the first error every method returns it. An Assembler is not safe for
// concurrent use.
type Assembler struct {
	o        options
	in       input
	zr       io.ReadCloser
	name     string // format in use once chosen ("" for a custom compressor)
	chosen   bool
	ended    bool     // the decoder reported the end of the stream
	out      []byte   // the block being filled
	blocks   [][]byte // full blocks before out
	filled   int64    // bytes in blocks
	alloc    int64    // capacity of blocks and out, at most maxSize+1
	hinted   bool     // the size hint was asked (or there is none)
	received int64
	err      error
	finished bool
}

// NewAssembler returns an Assembler. It honours [WithCompression],
// [WithCompressor], [WithMaxSize], [WithMaxCompressedSize] and
// [WithLookahead]; it fails with [ErrInvalidOption] or [ErrUnknownCompressor]
// on bad options.
func NewAssembler(opts ...Option) (*Assembler, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Assembler{o: o}, nil
}

// Write adds the next chunk. The Assembler copies what it keeps, so the caller
// may reuse chunk. Empty chunks are ignored.
func (a *Assembler) Write(chunk []byte) error {
	if a.err != nil {
		return a.err
	}
	if a.finished {
		return ErrClosed
	}
	if len(chunk) == 0 {
		return nil
	}
	if a.received+int64(len(chunk)) > a.o.maxCompressed {
		return a.fail(fmt.Errorf("%w: more than %d compressed bytes", ErrTooLarge, a.o.maxCompressed))
	}
	a.received += int64(len(chunk))
	if a.ended {
		return a.fail(fmt.Errorf("%w: data after end of %s stream", ErrCorrupt, a.format()))
	}
	a.in.add(chunk)
	if !a.chosen && a.in.buffered() >= SniffLen {
		if err := a.choose(); err != nil {
			return a.fail(err)
		}
	}
	if err := a.drain(false); err != nil {
		return a.fail(err)
	}
	return nil
}

// Finish decompresses the rest of the payload and returns all of it. It
// returns [ErrEmpty] if no data arrived, [ErrTruncated] if the stream is
// incomplete, and [ErrCorrupt] or [ErrTooLarge] as described on
// [Assembler]. A second Finish returns [ErrClosed]. Finish releases the
// decoder; Close is then a no-op.
func (a *Assembler) Finish() ([]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	if a.finished {
		return nil, ErrClosed
	}
	a.finished = true
	if a.received == 0 {
		return nil, a.fail(ErrEmpty)
	}
	a.in.eof = true
	if !a.chosen {
		if err := a.choose(); err != nil {
			return nil, a.fail(err)
		}
	}
	if err := a.drain(true); err != nil {
		return nil, a.fail(err)
	}
	out := a.join()
	a.release()
	return out, nil
}

// join returns the output as one slice, releasing the blocks as it copies
// them.
func (a *Assembler) join() []byte {
	out := a.out
	a.out = nil
	if len(a.blocks) > 0 {
		all := make([]byte, 0, a.filled+int64(len(out)))
		for i, b := range a.blocks {
			all = append(all, b...)
			a.blocks[i] = nil
		}
		out = append(all, out...)
		a.blocks, a.filled = nil, 0
	}
	if out == nil {
		out = []byte{}
	}
	return out[:len(out):len(out)]
}

// Close releases the decoder and buffers. It is idempotent and needed only
// when Finish is not called, for example when the stream is abandoned.
func (a *Assembler) Close() error {
	a.release()
	a.out, a.blocks = nil, nil
	if a.err == nil && !a.finished {
		a.err = ErrClosed
	}
	return nil
}

// Format returns the name of the format in use, or "" until it is known or
// when a custom compressor is used.
func (a *Assembler) Format() string { return a.name }

// Received returns the number of compressed bytes accepted so far.
func (a *Assembler) Received() int64 { return a.received }

// Size returns the number of decompressed bytes produced so far.
func (a *Assembler) Size() int { return int(a.filled) + len(a.out) }

func (a *Assembler) format() string {
	if a.name == "" {
		return "custom"
	}
	return a.name
}

func (a *Assembler) fail(err error) error {
	a.err = err
	a.release()
	a.out, a.blocks = nil, nil
	return err
}

func (a *Assembler) release() {
	if a.zr != nil {
		_ = a.zr.Close()
		a.zr = nil
	}
	a.in = input{eof: a.in.eof}
}

// choose picks the decoder from the buffered prefix.
func (a *Assembler) choose() error {
	a.chosen = true
	c, name, err := pick(&a.o, a.in.peek(SniffLen))
	if err != nil {
		return err
	}
	a.name, a.o.comp = name, c
	return nil
}

// pick chooses the decompressor for a payload starting with prefix: the
// sniffed format, else the configured compressor (refused if that format
// has a magic number the prefix lacks).
func pick(o *options, prefix []byte) (Compressor, string, error) {
	if name, ok := Sniff(prefix); ok {
		c, ok := Lookup(name)
		if !ok {
			return nil, "", fmt.Errorf("%w: %q", ErrUnknownCompressor, name)
		}
		return c, name, nil
	}
	if o.name != "" && hasMagic(canonical(o.name)) {
		return nil, "", fmt.Errorf("%w: not %s (starts %x)", ErrCorrupt, canonical(o.name), prefix)
	}
	return o.comp, o.name, nil
}

func canonical(name string) string {
	switch name {
	case "bz2":
		return Bzip2Name
	case "lzma":
		return XzName
	}
	return name
}

// drain decompresses while it is safe to: with at least lookahead bytes
// buffered, or everything once the input is complete.
func (a *Assembler) drain(final bool) error {
	stalls := 0
	for !a.ended && (final || a.in.buffered() >= a.o.lookahead) {
		if a.zr == nil {
			zr, err := a.o.comp.NewReader(&a.in)
			if err != nil {
				return a.decodeError(err, final)
			}
			a.zr = zr
		}
		if err := a.room(); err != nil {
			return err
		}
		end := min(cap(a.out), len(a.out)+readStep)
		n, err := a.zr.Read(a.out[len(a.out):end])
		a.out = a.out[:len(a.out)+n]
		if int64(a.Size()) > a.o.maxSize {
			return a.tooLarge()
		}
		if err == io.EOF {
			a.ended = true
			if a.in.buffered() > 0 {
				return fmt.Errorf("%w: %d bytes after end of %s stream", ErrCorrupt, a.in.buffered(), a.format())
			}
			break
		}
		if err != nil {
			return a.decodeError(err, final)
		}
		if n > 0 {
			stalls = 0
		} else if stalls++; stalls > maxStalls {
			return fmt.Errorf("%w: %s decoder makes no progress", ErrCorrupt, a.format())
		}
	}
	if final && !a.ended {
		return fmt.Errorf("%w: %s stream incomplete", ErrTruncated, a.format())
	}
	return nil
}

func (a *Assembler) tooLarge() error {
	return fmt.Errorf("%w: decompressed %s payload exceeds %d bytes", ErrTooLarge, a.format(), a.o.maxSize)
}

// room makes sure a.out has free space: it asks the size hint once the
// first SizeHintLen bytes are in, and starts a new block when a.out is
// full. Blocks never take the output past maxSize+1 bytes of capacity (one
// byte more than allowed is how an oversized payload is detected).
func (a *Assembler) room() error {
	if !a.hinted && a.o.sizeHint == nil {
		a.hinted = true
	}
	if !a.hinted {
		if a.out == nil {
			a.out = a.allocate(SizeHintLen)
		}
		if len(a.out) < cap(a.out) {
			return nil
		}
		a.hinted = true
		if n, ok := a.o.sizeHint(a.out); ok && n >= int64(len(a.out)) {
			if n > a.o.maxSize {
				return a.tooLarge()
			}
			// Exactly the announced size; a longer payload continues in
			// blocks.
			out := make([]byte, len(a.out), n)
			copy(out, a.out)
			a.alloc += n - int64(cap(a.out))
			a.out = out
		}
	}
	if len(a.out) < cap(a.out) {
		return nil
	}
	next := int64(minBlock)
	if a.out != nil {
		a.blocks = append(a.blocks, a.out)
		a.filled += int64(len(a.out))
		next = min(max(2*int64(cap(a.out)), minBlock), maxBlock)
	}
	a.out = a.allocate(next)
	if cap(a.out) == 0 {
		return a.tooLarge()
	}
	return nil
}

// allocate returns an empty buffer of capacity n, less when the output
// would pass maxSize+1 bytes.
func (a *Assembler) allocate(n int64) []byte {
	n = min(n, a.o.maxSize+1-a.alloc)
	if n <= 0 {
		return nil
	}
	a.alloc += n
	return make([]byte, 0, n)
}

func (a *Assembler) decodeError(err error, final bool) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return err
	case a.in.starved:
		return fmt.Errorf("%w: %s decoder needs more than %d bytes of lookahead", ErrCorrupt, a.format(), a.o.lookahead)
	case final && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return fmt.Errorf("%w: %s: %w", ErrTruncated, a.format(), err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, a.format(), err)
}

// input is the compressed bytes received but not yet decoded. Reads past the
// end fail with errStarved until eof is set.
type input struct {
	buf     []byte
	off     int
	eof     bool
	starved bool
}

func (in *input) buffered() int { return len(in.buf) - in.off }

func (in *input) peek(n int) []byte {
	return in.buf[in.off:min(len(in.buf), in.off+n)]
}

// add appends p. When the buffer is full it moves the unread bytes to the
// front if that frees at least half of it, else to a new buffer of twice
// their size, so each byte is moved O(1) times on average and the capacity
// stays below twice the largest amount buffered.
func (in *input) add(p []byte) {
	if len(in.buf)+len(p) > cap(in.buf) {
		n := in.buffered()
		if in.off >= len(in.buf)/2 && n+len(p) <= cap(in.buf) {
			copy(in.buf, in.buf[in.off:])
			in.buf = in.buf[:n]
		} else {
			nb := make([]byte, n, 2*(n+len(p)))
			copy(nb, in.buf[in.off:])
			in.buf = nb
		}
		in.off = 0
	}
	in.buf = append(in.buf, p...)
}

func (in *input) empty() error {
	if in.eof {
		return io.EOF
	}
	in.starved = true
	return errStarved
}

func (in *input) Read(p []byte) (int, error) {
	if in.off == len(in.buf) {
		return 0, in.empty()
	}
	n := copy(p, in.buf[in.off:])
	in.off += n
	return n, nil
}

func (in *input) ReadByte() (byte, error) {
	if in.off == len(in.buf) {
		return 0, in.empty()
	}
	b := in.buf[in.off]
	in.off++
	return b, nil
}

// Join assembles chunks into the decompressed payload. It takes the same
// options as [NewAssembler].
func Join(chunks [][]byte, opts ...Option) ([]byte, error) {
	a, err := NewAssembler(opts...)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	for _, c := range chunks {
		if err := a.Write(c); err != nil {
			return nil, err
		}
	}
	return a.Finish()
}
