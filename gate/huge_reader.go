package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gaterpc/gate/internal/chunk"
)

// HugeReader reads the result of one call as a byte stream: the msgpack
// encoding of the value, decompressed as the application reads it. Get one
// with [Client.CallReader]. It is meant for HugeData replies too large to
// hold: the client keeps at most one flow-control window of compressed
// chunks plus the decompressor's state, whatever the value's size, and
// grants the producer credit as Read consumes (docs/flow-control.md).
// Decompression runs in Read, on the caller's goroutine. A single
// (non-HugeData) reply reads as its msgpack encoding too.
//
// The decompressed size is capped by Settings.HugeDataMaxSize, as for
// [Client.Call]; raise it for values that are larger. A value that is one
// msgpack bin or str can be streamed as raw bytes with [ReadBinary].
//
// Read and ReadBinary are for one goroutine; Close may be called from any,
// and makes a blocked Read return.
type HugeReader struct {
	c      *Client
	ctx    context.Context // the call's context, for the credits Read sends
	cancel context.CancelFunc
	msgs   chan hugeMsg
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	err    error // the call's final status; written before msgs is closed

	mu     sync.Mutex // Read against Close
	first  *hugeMsg   // the message CallReader waited for, not yet used
	single []byte     // what is left of a single reply's encoding
	zr     *chunk.Reader
	rerr   error // sticky Read error
}

// hugeMsg is one message handed from the call's goroutine to the reader.
type hugeMsg struct {
	chunk  []byte // a HugeData chunk (compressed), or
	single []byte // the msgpack encoding of a single reply's result
	cl     *call  // the call the chunk arrived on (credit)
}

// rawResult marks a single reply's result passed undecoded.
type rawResult []byte

// CallReader calls method like [Client.Call] and returns a reader over
// the msgpack encoding of its result, for results too large to hold (see
// [HugeReader]). It returns once the first reply message has arrived, so
// errors of the call itself (unknown service, a remote exception raised
// before any data, timeouts) come back from CallReader. A streaming
// method gives an error with code InvalidArgument: use [Client.Stream].
// The caller must Close the reader.
//
// Like a [Stream], the reader lives until the value ends, fails, ctx is
// done, or Close: a ctx deadline bounds the whole read (and travels to the
// worker as the call's budget). Each message must arrive within
// Settings.ReplyTimeout of the previous one (the first one of the call),
// not counting the time the producer waits for the reader's credit.
func (c *Client) CallReader(ctx context.Context, method string, args ...any) (*HugeReader, error) {
	args, kw := splitKW(args)
	svc, fn := c.splitMethod(method)
	return c.openReader(ctx, svc, fn, args, kw)
}

// CallReader calls the method of the service; see [Client.CallReader].
func (s ServiceClient) CallReader(ctx context.Context, method string, args ...any) (*HugeReader, error) {
	args, kw := splitKW(args)
	return s.c.openReader(ctx, s.name, method, args, kw)
}

func (c *Client) openReader(ctx context.Context, service, fn string, args []any, kwargs map[string]any) (*HugeReader, error) {
	if c.isClosing() {
		return nil, ErrClosed
	}
	req, err := c.newRequest(ctx, service, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	spec := anySpec(c)
	spec.value = func(raw []byte) (any, error) { return rawResult(raw), nil }
	spec.reader, spec.passHuge = true, true
	spec.first = c.set.ReplyTimeout
	req.spec = spec
	rctx, cancel := context.WithCancel(ctx)
	r := &HugeReader{
		c:      c,
		ctx:    rctx,
		cancel: cancel,
		msgs:   make(chan hugeMsg, 2),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	w := ReplyWriterFunc(func(ctx context.Context, rep *Reply) error {
		var m hugeMsg
		switch rep.Kind {
		case ReplySingle:
			if rep.Err != nil {
				return nil // reported by the handler's status
			}
			raw, _ := rep.Value.(rawResult)
			m.single = raw
		case ReplyHugeChunk:
			b, _ := rep.Value.([]byte)
			m.chunk, m.cl = b, spec.cur
		case ReplyStreamItem:
			return Errorf(InvalidArgument, "%s.%s streams its reply: read it with Client.Stream", service, fn)
		default:
			return nil
		}
		select {
		case r.msgs <- m:
			return nil
		case <-r.stop:
			return errStreamClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	go func() {
		defer close(r.done)
		err := c.handler.ServeRPC(rctx, req, w)
		if err != nil {
			select {
			case <-r.stop:
				err = errStreamClosed
			default:
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("gate: %s.%s: %w", service, fn, err)
				}
			}
		}
		r.err = err
		close(r.msgs)
	}()
	// Wait for the first message, so that the call's own errors are
	// CallReader's.
	m, ok := <-r.msgs
	if !ok {
		<-r.done
		r.cancel()
		err := r.err
		if err == nil {
			err = Errorf(Internal, "%s.%s: reply without data", service, fn)
		}
		return nil, err
	}
	r.first = &m
	return r, nil
}

// Read reads the next bytes of the result's msgpack encoding. At the end
// it returns io.EOF. Errors: those of [Client.Call] (the call failed
// mid-stream), an error wrapping [ErrTooLarge] past
// Settings.HugeDataMaxSize, an Internal *Error for a corrupt or truncated
// payload, and [ErrClosed] after Close.
func (r *HugeReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rerr != nil {
		return 0, r.rerr
	}
	if r.first != nil && r.first.single != nil {
		r.single, r.first = r.first.single, nil
		if len(r.single) == 0 {
			r.rerr = io.EOF
		}
	}
	if r.single != nil {
		n := copy(p, r.single)
		r.single = r.single[n:]
		if len(r.single) == 0 {
			r.single, r.rerr = nil, io.EOF
		}
		return n, nil
	}
	if r.zr == nil {
		zr, err := chunk.NewReader(r.nextChunk, chunk.WithCompression(r.c.compress),
			chunk.WithMaxSize(r.c.set.HugeDataMaxSize), chunk.WithMaxCompressedSize(r.c.set.HugeDataMaxSize+4<<20))
		if err != nil {
			r.rerr = Errorf(Internal, "huge reply: %v", err)
			return 0, r.rerr
		}
		r.zr = zr
	}
	n, err := r.zr.Read(p)
	if err != nil && err != io.EOF {
		r.rerr = r.readError(err)
		_ = r.zr.Close()
		return n, r.rerr
	}
	if err == io.EOF {
		r.rerr = io.EOF
		_ = r.zr.Close()
	}
	return n, err
}

// readError maps a decompression error to the client's errors; the call's
// own errors pass through.
func (r *HugeReader) readError(err error) error {
	switch {
	case errors.Is(err, errStreamClosed):
		return ErrClosed
	case errors.Is(err, chunk.ErrTooLarge), errors.Is(err, chunk.ErrCorrupt), errors.Is(err, chunk.ErrTruncated),
		errors.Is(err, chunk.ErrEmpty), errors.Is(err, chunk.ErrUnknownCompressor):
		return hugeError(err)
	}
	return err
}

// nextChunk hands the decompressor the next chunk, counting it as
// consumed (which may grant credit); io.EOF after the end marker.
func (r *HugeReader) nextChunk() ([]byte, error) {
	for {
		var m hugeMsg
		if r.first != nil {
			m, r.first = *r.first, nil
		} else {
			var ok bool
			if m, ok = <-r.msgs; !ok {
				<-r.done
				if r.err != nil {
					return nil, r.err
				}
				return nil, io.EOF
			}
		}
		if m.single != nil {
			return nil, Errorf(Internal, "huge reply: single reply after HugeData chunks")
		}
		r.c.consumed(r.ctx, m.cl, 1, int64(len(m.chunk)))
		if len(m.chunk) > 0 {
			return m.chunk, nil
		}
	}
}

// Close stops the call if it has not finished (Gate.cancel goes to the
// broker) and releases the decompressor. It is idempotent and returns nil.
func (r *HugeReader) Close() error {
	r.once.Do(func() {
		close(r.stop)
		r.cancel()
	})
	<-r.done
	r.mu.Lock()
	if r.zr != nil {
		_ = r.zr.Close()
	}
	if r.rerr == nil {
		r.rerr = ErrClosed
	}
	r.first, r.single = nil, nil
	r.mu.Unlock()
	return nil
}

// ReadBinary reads the header of a msgpack bin or str from r and returns
// a reader over its content, for streaming a HugeData value that is one
// large bytes or string without holding it:
//
//	hr, err := c.CallReader(ctx, "Files.get", name)
//	if err != nil { ... }
//	defer hr.Close()
//	body, size, err := gate.ReadBinary(hr)
//	if err != nil { ... }
//	n, err := io.Copy(dst, body) // n == size at the end, unless err
//
// Other values give an error. The returned reader ends after size bytes
// (with io.ErrUnexpectedEOF if r ends first).
func ReadBinary(r io.Reader) (io.Reader, int64, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:1]); err != nil {
		return nil, 0, fmt.Errorf("gate: read binary header: %w", err)
	}
	var extra int
	switch b := h[0]; {
	case b >= 0xa0 && b <= 0xbf: // fixstr
		return &exactReader{r: r, left: int64(b & 0x1f)}, int64(b & 0x1f), nil
	case b == 0xc4 || b == 0xd9:
		extra = 1
	case b == 0xc5 || b == 0xda:
		extra = 2
	case b == 0xc6 || b == 0xdb:
		extra = 4
	default:
		return nil, 0, fmt.Errorf("gate: read binary: msgpack type 0x%02x is not bin or str", b)
	}
	if _, err := io.ReadFull(r, h[1:1+extra]); err != nil {
		return nil, 0, fmt.Errorf("gate: read binary header: %w", err)
	}
	var n int64
	for _, b := range h[1 : 1+extra] {
		n = n<<8 | int64(b)
	}
	return &exactReader{r: r, left: n}, n, nil
}

// exactReader reads exactly left bytes of r.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}
