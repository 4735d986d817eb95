package chunk

import (
	"errors"
	"fmt"
	"io"
)

// Reader decompresses a chunked payload as it is read: the pull form of
// [Assembler], for a payload too large to hold. It asks next for chunks
// only when its decoder needs more input, so it holds one chunk of
// compressed input plus the decoder's own state (the gzip window, the zstd
// window up to its MaxWindow), never the payload:
//
//	r, err := chunk.NewReader(func() ([]byte, error) {
//		c, ok := <-chunks
//		if !ok {
//			return nil, io.EOF // the end marker
//		}
//		return c, nil
//	}, chunk.WithMaxSize(1<<30))
//	if err != nil { ... }
//	defer r.Close()
//	_, err = io.Copy(dst, r)
//
// next returns the chunks in order and io.EOF after the last one; any other
// error is returned by Read unchanged. Empty chunks are ignored. The format
// is sniffed as by the Assembler; checksums are verified at the end of the
// stream, which Read reports as io.EOF only after the verification and
// only when next has no more data. Output beyond [WithMaxSize] fails with
// [ErrTooLarge], compressed input beyond [WithMaxCompressedSize] likewise;
// a stream that ends early gives [ErrTruncated], bad data [ErrCorrupt], no
// data at all [ErrEmpty].
//
// After the first error every Read returns it. A Reader is not safe for
// concurrent use; Close releases the decoder and is idempotent.
type Reader struct {
	o    options
	in   pullInput
	zr   io.ReadCloser
	name string
	out  int64 // bytes returned
	err  error
}

// NewReader returns a Reader over the chunks next returns. It honours
// [WithCompression], [WithCompressor], [WithMaxSize] and
// [WithMaxCompressedSize]. Slices returned by next are read in place and
// must stay unchanged until the following call of next.
func NewReader(next func() ([]byte, error), opts ...Option) (*Reader, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, fmt.Errorf("%w: nil chunk source", ErrInvalidOption)
	}
	return &Reader{o: o, in: pullInput{next: next, max: o.maxCompressed}}, nil
}

// Read reads decompressed bytes.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.zr == nil {
		if err := r.start(); err != nil {
			return 0, r.fail(err)
		}
	}
	// Read at most one byte past the cap: that byte detects the overrun.
	if room := r.o.maxSize - r.out + 1; int64(len(p)) > room {
		p = p[:room]
	}
	for stalls := 0; ; {
		n, err := r.zr.Read(p)
		r.out += int64(n)
		if r.out > r.o.maxSize {
			return 0, r.fail(fmt.Errorf("%w: decompressed %s payload exceeds %d bytes", ErrTooLarge, r.format(), r.o.maxSize))
		}
		switch {
		case err == io.EOF:
			if r.in.more() {
				return n, r.fail(fmt.Errorf("%w: data after end of %s stream", ErrCorrupt, r.format()))
			}
			if r.in.err != nil {
				return n, r.fail(r.in.err)
			}
			r.err = io.EOF
			r.release()
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil // io.EOF on the next Read
		case err != nil:
			return n, r.fail(r.decodeError(err))
		case n > 0:
			return n, nil
		}
		if stalls++; stalls > maxStalls {
			return 0, r.fail(fmt.Errorf("%w: %s decoder makes no progress", ErrCorrupt, r.format()))
		}
	}
}

// Format returns the name of the format in use, or "" until it is known or
// when a custom compressor is used.
func (r *Reader) Format() string { return r.name }

// Received returns the number of compressed bytes read from next so far.
func (r *Reader) Received() int64 { return r.in.received }

// Close releases the decoder. Reads after Close return [ErrClosed] (or the
// error or io.EOF the Reader had already reached).
func (r *Reader) Close() error {
	r.release()
	if r.err == nil {
		r.err = ErrClosed
	}
	return nil
}

func (r *Reader) release() {
	if r.zr != nil {
		_ = r.zr.Close()
		r.zr = nil
	}
	r.in.buf = nil
}

func (r *Reader) fail(err error) error {
	r.err = err
	r.release()
	return err
}

func (r *Reader) format() string {
	if r.name == "" {
		return "custom"
	}
	return r.name
}

// start sniffs the format from the first bytes and opens the decoder.
func (r *Reader) start() error {
	prefix, err := r.in.prefix(SniffLen)
	if err != nil {
		return err
	}
	if len(prefix) == 0 {
		return ErrEmpty
	}
	comp, name, err := pick(&r.o, prefix)
	if err != nil {
		return err
	}
	r.name = name
	zr, err := comp.NewReader(&r.in)
	if err != nil {
		return r.decodeError(err)
	}
	r.zr = zr
	return nil
}

func (r *Reader) decodeError(err error) error {
	switch {
	case r.in.err != nil:
		return r.in.err // the source failed (or the compressed cap): report that
	case errors.Is(err, ErrTooLarge):
		return err
	case r.in.eof && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return fmt.Errorf("%w: %s: %w", ErrTruncated, r.format(), err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, r.format(), err)
}

// pullInput is the decoder's input: the current chunk, refilled from next.
type pullInput struct {
	next     func() ([]byte, error)
	buf      []byte
	eof      bool  // next reported io.EOF
	err      error // next failed, or the compressed cap was crossed
	received int64
	max      int64
}

// fill makes buf non-empty; false at the end of the input or on error.
func (in *pullInput) fill() bool {
	for len(in.buf) == 0 {
		if in.eof || in.err != nil {
			return false
		}
		c, err := in.next()
		if err == io.EOF {
			in.eof = true
			return false
		}
		if err != nil {
			in.err = err
			return false
		}
		in.received += int64(len(c))
		if in.received > in.max {
			in.err = fmt.Errorf("%w: more than %d compressed bytes", ErrTooLarge, in.max)
			return false
		}
		in.buf = c
	}
	return true
}

// more reports whether input remains after the decoder's end of stream.
func (in *pullInput) more() bool { return in.fill() }

// prefix returns the first n bytes of input (fewer if the input is
// shorter) without consuming them. Chunks shorter than n are joined.
func (in *pullInput) prefix(n int) ([]byte, error) {
	if !in.fill() {
		return nil, in.err
	}
	if len(in.buf) >= n {
		return in.buf[:n], nil
	}
	head := append([]byte(nil), in.buf...)
	in.buf = nil
	for len(head) < n && in.fill() {
		k := min(n-len(head), len(in.buf))
		head = append(head, in.buf[:k]...)
		if k == len(in.buf) {
			in.buf = nil
			continue
		}
		// The rest of this chunk follows the joined head.
		head = append(head, in.buf[k:]...)
		in.buf = nil
		break
	}
	if in.err != nil {
		return nil, in.err
	}
	in.buf = head
	return head[:min(n, len(head))], nil
}

func (in *pullInput) end() error {
	if in.err != nil {
		return in.err
	}
	return io.EOF
}

func (in *pullInput) Read(p []byte) (int, error) {
	if !in.fill() {
		return 0, in.end()
	}
	n := copy(p, in.buf)
	in.buf = in.buf[n:]
	return n, nil
}

func (in *pullInput) ReadByte() (byte, error) {
	if !in.fill() {
		return 0, in.end()
	}
	b := in.buf[0]
	in.buf = in.buf[1:]
	return b, nil
}
