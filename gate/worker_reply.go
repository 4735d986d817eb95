package gate

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// HugeValue is a value a worker sends as HugeData: msgpack-encoded,
// compressed with Settings.HugeDataCompress and cut into
// Settings.HugeDataSizeOf chunks. Make one with [Huge].
type HugeValue struct{ v any }

// Huge wraps v so that a method returning it sends v as HugeData, like
// 0.2.12's HugeData return value. The caller receives v itself. Values
// whose encoding exceeds Settings.AutoHugeThreshold are sent this way
// even without the wrapper. Note that a 0.2.12 Python client can receive
// only one HugeData reply per process.
func Huge(v any) HugeValue { return HugeValue{v} }

// Value returns the wrapped value.
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
	enc, err := r.cdc.Marshal(v)
	if err != nil {
		return r.exception(ctx, encodeError(v, err))
	}
	if t := r.s.AutoHugeThreshold; t > 0 && len(enc) > t {
		return r.huge(ctx, enc)
	}
	return r.single(ctx, v, enc)
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

// huge compresses and chunks an encoded value (docs/wire-protocol.md 7.3).
func (r *replier) huge(ctx context.Context, enc []byte) error {
	var sendErr error
	s, err := chunk.NewSender(func(c []byte) error {
		sendErr = r.send(ctx, ReplyHugeChunk, nil, nil, wire.HugeChunkBody(c))
		return sendErr
	}, chunk.WithCompression(r.s.HugeDataCompress), chunk.WithLevel(r.s.HugeDataCompressLevel), chunk.WithChunkSize(r.s.HugeDataSizeOf))
	if err != nil {
		return r.exception(ctx, Errorf(Internal, "huge reply: %v", err))
	}
	if _, err = s.Write(enc); err == nil {
		err = s.Close()
	} else {
		s.Abort()
	}
	switch {
	case sendErr != nil:
		return sendErr
	case err != nil:
		herr := Errorf(Internal, "huge reply: %v", err)
		if serr := r.send(ctx, ReplyHugeError, nil, herr, wire.HugeErrorBody(r.triple(herr))); serr != nil {
			return serr
		}
		return herr
	}
	// The end marker's Value is the payload's size before compression,
	// for middleware (the raw bytes of gaterpc_worker_huge_data_bytes_total).
	return r.send(ctx, ReplyHugeEnd, len(enc), nil, wire.HugeEndBody())
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
	cdc *codec.Codec
	s   *Settings
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
	return &replier{w: w, cdc: env.cdc, s: env.s}
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
		s.err = err
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
