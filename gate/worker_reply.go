package gate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"reflect"
	"strings"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// HugeValue is a value a worker sends as HugeData: msgpack-encoded,
// compressed with Settings.HugeDataCompress and cut into chunks of the
// size the client asked for (docs/flow-control.md), or of
// Settings.HugeDataSizeOf for clients that ask for nothing (0.2.12).
// Make one with [Huge], or stream it with [HugeFrom] or [HugeBinary].
type HugeValue struct {
	v   any
	src io.Reader // HugeFrom, HugeBinary: the source of the encoding
	bin bool      // HugeBinary: src yields n bytes of a bin
	n   int64
}

// HugeFrom returns a HugeData value whose msgpack encoding is read from r
// while it is being sent: the worker compresses and chunks it as it
// reads, so a value of any size (a 1 GB file) is sent with a few chunks in
// memory. r must yield exactly one msgpack value; the worker does not
// check it (the receiver fails to decode anything else). A read error
// ends the reply with a HugeData exception marker. If r is an
// [io.Closer], the worker closes it when the reply is over, whether or
// not it was sent.
func HugeFrom(r io.Reader) HugeValue { return HugeValue{src: r} }

// HugeBinary returns a HugeData value that the caller receives as a byte
// string of n bytes ([]byte in Go, bytes in Python), read from r while it
// is being sent: the worker writes the msgpack bin32 header itself and
// then copies exactly n bytes of r. Fewer than n bytes is an error that
// ends the reply with a HugeData exception marker; bytes after the n-th
// are not read. n must be in 0..2^32-1, msgpack's bin limit. If r is an
// [io.Closer], the worker closes it when the reply is over.
//
//	f, err := os.Open(path)
//	if err != nil { return gate.HugeValue{}, err }
//	st, err := f.Stat()
//	if err != nil { f.Close(); return gate.HugeValue{}, err }
//	return gate.HugeBinary(st.Size(), f), nil
func HugeBinary(n int64, r io.Reader) HugeValue { return HugeValue{src: r, bin: true, n: n} }

// header returns the bytes the worker sends before the source's: the
// bin32 header of a HugeBinary, nothing for HugeFrom.
func (h HugeValue) header() ([]byte, error) {
	if !h.bin {
		return nil, nil
	}
	if h.n < 0 || h.n > math.MaxUint32 {
		return nil, Errorf(InvalidArgument, "HugeBinary: size %d outside msgpack's bin range 0..%d", h.n, uint32(math.MaxUint32))
	}
	return binary.BigEndian.AppendUint32([]byte{0xc6}, uint32(h.n)), nil
}

// copySource writes the source of h (a HugeFrom or HugeBinary value) to
// dst, header first, and returns the bytes of encoding written.
func (h HugeValue) copySource(dst io.Writer) (int64, error) {
	hdr, err := h.header()
	if err != nil {
		return 0, err
	}
	n, err := dst.Write(hdr)
	total := int64(n)
	if err != nil {
		return total, err
	}
	buf := make([]byte, 128<<10)
	if !h.bin {
		k, err := io.CopyBuffer(dst, h.src, buf)
		return total + k, err
	}
	k, err := io.CopyBuffer(dst, io.LimitReader(h.src, h.n), buf)
	total += k
	if err == nil && k < h.n {
		err = fmt.Errorf("HugeBinary: source ended after %d of %d bytes: %w", k, h.n, io.ErrUnexpectedEOF)
	}
	return total, err
}

// closeSource closes the source of h if it is an io.Closer.
func (h HugeValue) closeSource() {
	if c, ok := h.src.(io.Closer); ok {
		_ = c.Close()
	}
}

// encoding returns the whole encoding of a HugeFrom or HugeBinary value,
// for process-pool children, which send their result in one piece.
func (h HugeValue) encoding() ([]byte, error) {
	defer h.closeSource()
	var b bytesWriter
	_, err := h.copySource(&b)
	return b, err
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

// Huge wraps v so that a method returning it sends v as HugeData, like
// 0.2.12's HugeData return value. The caller receives v itself. Values
// whose encoding exceeds Settings.AutoHugeThreshold are sent this way
// even without the wrapper. Note that a 0.2.12 Python client can receive
// only one HugeData reply per process.
func Huge(v any) HugeValue { return HugeValue{v: v} }

// Value returns the wrapped value (nil for [HugeFrom] and [HugeBinary]
// values, whose encoding is read while it is sent).
func (h HugeValue) Value() any { return h.v }

// Pre-encoded parts of a single reply map {"result": v, "exception": nil}.
var (
	resultPrefix = []byte("\x82\xa6result")
	resultSuffix = []byte("\xa9exception\xc0")
)

// replier sends the replies of one call through the middleware's writer.
type replier struct {
	w     ReplyWriter
	cdc   *codec.Codec
	s     *Settings
	where string       // Python-like location of the method, for tracebacks
	fn    *funcAdapter // when set and where is empty, where comes from fn (made only for an exception)
	chunk int          // HugeData chunk size the client asked for; 0: s.HugeDataSizeOf
}

func (r *replier) location() string {
	if r.where == "" && r.fn != nil {
		r.where = r.fn.where()
	}
	return r.where
}

func (r *replier) send(ctx context.Context, kind ReplyKind, v any, err error, body [][]byte) error {
	return r.w.Send(ctx, &Reply{Kind: kind, Value: v, Err: err, Body: body})
}

// result sends what a method returned: a stream, a huge value or a single
// reply (huge if its encoding exceeds the auto threshold).
func (r *replier) result(ctx context.Context, v any) error {
	switch x := v.(type) {
	case HugeValue:
		if x.src != nil {
			return r.hugeFrom(ctx, x)
		}
		enc, err := r.cdc.Marshal(x.v)
		if err != nil {
			return r.exception(ctx, encodeError(x.v, err))
		}
		return r.huge(ctx, enc)
	case codec.RawMessage: // pre-encoded (process executor results)
		if t := r.s.AutoHugeThreshold; t > 0 && len(x) > t {
			return r.huge(ctx, x)
		}
		return r.single(ctx, v, x)
	}
	if ok, err := r.stream(ctx, v); ok {
		return err
	}
	// Encode straight after the reply map's prefix: one buffer, no copy.
	b, err := r.cdc.Append(append(make([]byte, 0, replySizeHint(v)), resultPrefix...), v)
	if err != nil {
		return r.exception(ctx, encodeError(v, err))
	}
	if t := r.s.AutoHugeThreshold; t > 0 && len(b)-len(resultPrefix) > t {
		return r.huge(ctx, b[len(resultPrefix):])
	}
	b = append(b, resultSuffix...)
	return r.send(ctx, ReplySingle, v, nil, wire.SingleBody(b))
}

// replySizeHint is the initial capacity of a single reply's buffer: the
// reply map's keys plus the value's encoding for str and bin values
// (their header is at most 5 bytes), else 128 bytes.
func replySizeHint(v any) int {
	const keys = len("\x82\xa6result") + len("\xa9exception\xc0")
	switch x := v.(type) {
	case []byte:
		return keys + 5 + len(x)
	case string:
		return keys + 5 + len(x)
	}
	return 128
}

func (r *replier) single(ctx context.Context, v any, enc []byte) error {
	b := make([]byte, 0, len(resultPrefix)+len(enc)+len(resultSuffix))
	b = append(append(append(b, resultPrefix...), enc...), resultSuffix...)
	return r.send(ctx, ReplySingle, v, nil, wire.SingleBody(b))
}

func encodeError(v any, err error) error {
	return Errorf(InvalidArgument, "cannot encode result of type %T: %v", v, err)
}

// exception sends err as a single exception reply.
func (r *replier) exception(ctx context.Context, err error) error {
	class, repr, tb := exceptionTriple(err, r.location())
	b, eerr := r.cdc.EncodeException(class, repr, tb)
	if eerr != nil { // a gigantic message: send a short one
		b, _ = r.cdc.EncodeException(class, class+"('exception text too long')", "")
	}
	return r.send(ctx, ReplySingle, nil, err, wire.SingleBody(b))
}

func (r *replier) triple(err error) []byte {
	class, repr, tb := exceptionTriple(err, r.location())
	b, eerr := r.cdc.EncodeTriple(class, repr, tb)
	if eerr != nil {
		b, _ = r.cdc.EncodeTriple(class, class+"('exception text too long')", "")
	}
	return b
}

// pipelineDepth is how many compressed HugeData chunks may wait to be
// sent while the next ones are being compressed.
const pipelineDepth = 2

// huge compresses and chunks an encoded value (docs/wire-protocol.md 7.3).
func (r *replier) huge(ctx context.Context, enc []byte) error {
	size := r.chunkSize()
	return r.hugeSend(ctx, len(enc) > 2*size, func(s io.Writer) (int64, error) {
		n, err := s.Write(enc)
		return int64(n), err
	})
}

// hugeFrom sends a HugeFrom or HugeBinary value, reading its source as it
// goes.
func (r *replier) hugeFrom(ctx context.Context, h HugeValue) error {
	defer h.closeSource()
	if _, err := h.header(); err != nil {
		return r.exception(ctx, err)
	}
	return r.hugeSend(ctx, true, h.copySource)
}

// compressor is Settings.HugeDataCompress, except that gzip towards a
// gate client (one that asked for a chunk size) uses Go's deflate: zlib's
// bytes are Python's, but Go's is faster and stores incompressible data
// at memory speed (chunk.Gzip.Go).
func (r *replier) compressor() chunk.Option {
	if r.chunk > 0 && r.s.HugeDataCompress == chunk.GzipName {
		return chunk.WithCompressor(chunk.Gzip{Go: true})
	}
	return chunk.WithCompression(r.s.HugeDataCompress)
}

func (r *replier) chunkSize() int {
	if r.chunk > 0 {
		return r.chunk
	}
	return r.s.HugeDataSizeOf
}

// hugeSend sends the encoding write produces as HugeData. With pipeline,
// chunks are handed to the writer on a goroutine of the chunk Sender's
// own while write goes on compressing (at most pipelineDepth chunks
// ahead); the writer may block there on the reader's window.
func (r *replier) hugeSend(ctx context.Context, pipeline bool, write func(io.Writer) (int64, error)) error {
	var sendErr error
	opts := []chunk.Option{r.compressor(), chunk.WithLevel(r.s.HugeDataCompressLevel), chunk.WithChunkSize(r.chunkSize())}
	if pipeline {
		opts = append(opts, chunk.WithPipeline(pipelineDepth))
	}
	s, err := chunk.NewSender(func(c []byte) error {
		sendErr = r.send(ctx, ReplyHugeChunk, nil, nil, wire.HugeChunkBody(c))
		return sendErr
	}, opts...)
	if err != nil {
		return r.exception(ctx, Errorf(Internal, "huge reply: %v", err))
	}
	n, err := write(s)
	if err == nil {
		err = s.Close()
	} else {
		s.Abort() // waits for the pipeline: sendErr is settled below
	}
	switch {
	case sendErr != nil && !errors.As(sendErr, new(*Error)):
		return sendErr // the writer failed or the caller is gone
	case sendErr != nil:
		err = sendErr // a deadline while waiting for credit
	case err != nil:
		var ge *Error
		if !errors.As(err, &ge) {
			err = Errorf(Internal, "huge reply: %v", err)
		}
	}
	if err != nil {
		if serr := r.send(ctx, ReplyHugeError, nil, err, wire.HugeErrorBody(r.triple(err))); serr != nil {
			return serr
		}
		return err
	}
	// The end marker's Value is the payload's size before compression,
	// for middleware (the raw bytes of gaterpc_worker_huge_data_bytes_total).
	return r.send(ctx, ReplyHugeEnd, int(n), nil, wire.HugeEndBody())
}

// stream sends v as a stream if it is an iter.Seq or an
// iter.Seq2[T, error]; ok reports whether it was one.
func (r *replier) stream(ctx context.Context, v any) (ok bool, err error) {
	if !mayStream(v) {
		return false, nil // no closure to build for a plain value
	}
	var sendErr error
	ok, iterErr := iterate(ctx, v, func(item any) bool {
		enc, err := r.cdc.Marshal(item)
		if err != nil {
			sendErr = encodeError(item, err)
			return false
		}
		if sendErr = r.send(ctx, ReplyStreamItem, item, nil, wire.StreamItemBody(enc)); sendErr != nil {
			return false
		}
		return ctx.Err() == nil
	})
	if !ok {
		return false, nil
	}
	if sendErr != nil && !errors.As(sendErr, new(*Error)) {
		return true, sendErr // the writer failed: nothing more can be sent
	}
	fail := sendErr
	if fail == nil {
		fail = iterErr
	}
	if fail == nil {
		fail = ctx.Err()
	}
	if fail == nil {
		return true, r.send(ctx, ReplyStreamEnd, nil, nil, wire.StreamEndBody())
	}
	if errors.Is(fail, context.Canceled) {
		return true, fail // the caller is gone
	}
	if err := r.send(ctx, ReplyStreamError, nil, fail, wire.StreamErrorBody(r.triple(fail))); err != nil {
		return true, err
	}
	return true, fail
}

// iterate calls yield for each item of v if v is an iter.Seq[T] or an
// iter.Seq2[T, error]. For Seq2 a non-nil error ends the iteration and is
// returned. A panic in the iterator is returned as an error.
// mayStream reports whether v could be an iterator iterate accepts: a
// func value. Plain results skip iterate (and its closures).
func mayStream(v any) bool {
	switch v.(type) {
	case nil, bool, int, int64, uint64, float64, string, []byte, []any, map[string]any:
		return false
	}
	return reflect.TypeOf(v).Kind() == reflect.Func
}

func iterate(ctx context.Context, v any, yield func(any) bool) (ok bool, err error) {
	switch s := v.(type) {
	case nil:
		return false, nil
	case iter.Seq[any]:
		return true, protect(func() {
			for item := range s {
				if !yield(item) {
					return
				}
			}
		})
	case iter.Seq2[any, error]:
		return true, protect(func() {
			for item, e := range s {
				if e != nil {
					err = e
					return
				}
				if !yield(item) {
					return
				}
			}
		})
	}
	rv := reflect.ValueOf(v)
	t := rv.Type()
	if t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 0 || rv.IsNil() {
		return false, nil
	}
	y := t.In(0)
	if y.Kind() != reflect.Func || y.NumOut() != 1 || y.Out(0).Kind() != reflect.Bool {
		return false, nil
	}
	var fn func([]reflect.Value) []reflect.Value
	switch {
	case y.NumIn() == 1:
		fn = func(a []reflect.Value) []reflect.Value {
			return []reflect.Value{reflect.ValueOf(yield(a[0].Interface()))}
		}
	case y.NumIn() == 2 && y.In(1) == errType:
		fn = func(a []reflect.Value) []reflect.Value {
			if e := a[1].Interface(); e != nil {
				err = e.(error)
				return []reflect.Value{reflect.ValueOf(false)}
			}
			return []reflect.Value{reflect.ValueOf(yield(a[0].Interface()))}
		}
	default:
		return false, nil
	}
	perr := protect(func() { rv.Call([]reflect.Value{reflect.MakeFunc(y, fn)}) })
	if perr != nil {
		return true, perr
	}
	return true, err
}

// protect runs f, turning a panic into an error.
func protect(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	f()
	return nil
}

// exceptionTriple renders err as [class, repr, traceback]. An *Error keeps
// its class and message; context errors become TimeoutError and
// CancelledError; other errors take their class from the first named
// error type in their chain (e.g. *fs.PathError → "PathError"), else
// "Exception". where locates the method when err carries no traceback.
func exceptionTriple(err error, where string) (class, repr, tb string) {
	var ge *Error
	var ce *codec.Exception
	switch {
	case errors.As(err, &ge):
		class = ge.Class
		if class == "" {
			class = classForCode(ge.Code)
		}
		repr = ge.Message
		if repr == "" {
			repr = class + "()"
		}
		tb = ge.Traceback
		if errors.Unwrap(err) != nil && err != error(ge) && !strings.Contains(repr, err.Error()) {
			// wrapped with context: keep the outer text visible
			repr = class + "(" + pyRepr(err.Error()) + ")"
		}
	case errors.As(err, &ce):
		class, repr, tb = ce.Class, ce.Repr, ce.Traceback
	case errors.Is(err, context.DeadlineExceeded):
		class = "TimeoutError"
		repr = class + "(" + pyRepr(err.Error()) + ")"
	case errors.Is(err, context.Canceled):
		class = "CancelledError"
		repr = class + "(" + pyRepr(err.Error()) + ")"
	default:
		class = goErrorClass(err)
		repr = class + "(" + pyRepr(err.Error()) + ")"
	}
	if class == "" {
		class = "Exception"
	}
	if tb == "" && where != "" {
		tb = where + "    return " + repr + "\n"
	}
	return class, repr, tb
}

// goErrorClass derives a Python-like class name from err's Go type.
func goErrorClass(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		name := t.Name()
		switch {
		case name == "" || name == "errorString" || name == "wrapError" || name == "wrapErrors" || name == "joinError":
			continue
		case name[0] >= 'a' && name[0] <= 'z':
			return strings.ToUpper(name[:1]) + name[1:]
		default:
			return name
		}
	}
	return "Exception"
}

// SendResult sends v as the final reply of a call, as a method returning
// v would: a single reply, a stream for an iter.Seq or iter.Seq2[T,
// error], or HugeData for a [Huge] value or a large encoding. It is for
// worker middleware that answers a call itself instead of calling the
// next handler; settings are the defaults unless the request came
// through a Worker.
func SendResult(ctx context.Context, w ReplyWriter, v any) error {
	return replierFor(ctx, w).result(ctx, v)
}

// SendError sends err as the final exception reply of a call (see
// [Service.Register] for how errors become exception triples).
func SendError(ctx context.Context, w ReplyWriter, err error) error {
	if err == nil {
		return SendResult(ctx, w, nil)
	}
	return replierFor(ctx, w).exception(ctx, err)
}

type replyEnvKey struct{}

// replyEnv is what a worker puts in a handler's ctx for SendResult.
type replyEnv struct {
	cdc   *codec.Codec
	s     *Settings
	chunk int // HugeData chunk size the client asked for; 0: s.HugeDataSizeOf
}

var defaultEnv = func() *replyEnv {
	s := DefaultSettings()
	c, _ := codec.New()
	return &replyEnv{cdc: c, s: &s}
}()

func replierFor(ctx context.Context, w ReplyWriter) *replier {
	env, _ := ctx.Value(replyEnvKey{}).(*replyEnv)
	if env == nil {
		env = defaultEnv
	}
	return &replier{w: w, cdc: env.cdc, s: env.s, chunk: env.chunk}
}

// String renders h for debugging.
func (h HugeValue) String() string { return fmt.Sprintf("Huge(%v)", h.v) }

// NewException returns an *Error that a method can return to raise the
// Python exception class(message) at the caller, e.g.
// NewException("ValueError", "boom!") is sent as ["ValueError",
// "ValueError('boom!')", traceback]. Its Code is derived from the class (as for a remote exception).
func NewException(class, message string) *Error {
	return &Error{Code: codeForClass(class), Class: class, Message: class + "(" + pyRepr(message) + ")"}
}

// StreamWriter lets a method send a stream item by item, as an
// alternative to returning an iter.Seq. A method that declares a
// *StreamWriter parameter (anywhere after the ctx) gets one; it may
// return only an error. Each Send is one stream item; returning nil sends
// the end marker, returning an error sends the exception marker. The
// writer belongs to the method's goroutine and is not valid after the
// method returns.
type StreamWriter struct {
	r   *replier
	ctx context.Context
	n   int
	err error
}

// Send sends v as the next stream item. It returns an error when v cannot
// be encoded or the reply cannot be sent (the worker is closing), and the
// ctx error once the call is cancelled or its deadline has passed; the
// method should then return.
func (s *StreamWriter) Send(v any) error {
	if s.err != nil {
		return s.err
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	enc, err := s.r.cdc.Marshal(v)
	if err != nil {
		return encodeError(v, err)
	}
	if err := s.r.send(s.ctx, ReplyStreamItem, v, nil, wire.StreamItemBody(enc)); err != nil {
		if !errors.As(err, new(*Error)) { // an *Error (a deadline while waiting for credit) still lets the end marker go
			s.err = err
		}
		return err
	}
	s.n++
	return nil
}

// Sent returns the number of items sent so far.
func (s *StreamWriter) Sent() int { return s.n }

// finish sends the end or exception marker after the method returned.
func (s *StreamWriter) finish(err error) error {
	if s.err != nil {
		return s.err
	}
	if err == nil {
		return s.r.send(s.ctx, ReplyStreamEnd, nil, nil, wire.StreamEndBody())
	}
	if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
		return err // the caller is gone
	}
	if serr := s.r.send(s.ctx, ReplyStreamError, nil, err, wire.StreamErrorBody(s.r.triple(err))); serr != nil {
		return serr
	}
	return err
}
