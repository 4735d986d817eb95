package gate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// Client calls methods of gate-rpc services through a broker. It keeps one
// DEALER socket to the broker's frontend, owned by one loop goroutine;
// every call is pipelined over it. A Client is safe for concurrent use by
// many goroutines. Close it when done.
//
// Wire behaviour (gaterpc 0.2.12 compatible): a request is
// ” | MDPC01 | service | request-id | msgpack(method) | msgpack(args) |
// msgpack(kwargs). The request id is 16 random bytes, extended with the
// remaining deadline budget and middleware metadata (traceparent...) by
// wire.EncodeRequestID; 0.2.12 peers echo it verbatim. When idle the client
// sends Gate.keepalive(b"heartbeat") every Settings.Heartbeat; when nothing
// arrives for Heartbeat×Liveness it declares the broker lost, fails every
// pending call with [ErrBrokerLost] and reconnects at once with a fresh
// DEALER and routing id, whose silence window is longer by a backoff.
// Calls marked [Idempotent] are retried by a client built with
// [WithRetry].
type Client struct {
	endpoint string
	set      Settings
	service  string        // default service
	timeout  time.Duration // default call timeout
	compress string        // HugeData fallback decompressor
	log      *slog.Logger
	codec    *codec.Codec
	handler  Handler // middleware chain around roundTrip
	zctx     *zmq.Context
	ownZctx  bool

	pending *pendingTable
	loop    *clientLoop
	out     *zmqx.Queue[outMsg] // to the loop: push only; the loop owns the rest

	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}

	connects atomic.Uint64
	losses   atomic.Uint64

	newID func() []byte // base request ids; replaced in tests
	retry *retrier      // nil: no retries (WithRetry)

	window wire.Window       // the announced flow-control window
	flowMD map[string]string // the pairs announcing it; nil when flow control is off

	anySpec *callSpec // template of anySpec
}

// NewClient connects a client to the broker frontend at endpoint
// (tcp://, ipc:// or inproc://; inproc needs [WithZMQContext] shared with
// the broker). Connecting is asynchronous: NewClient returns once the
// socket exists, and calls made before the broker is reachable wait for it
// within their deadline. Invalid options give an error wrapping
// [ErrInvalidOption].
func NewClient(endpoint string, opts ...ClientOption) (*Client, error) {
	var o clientOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyClient(&o)
		}
	}
	if !strings.Contains(endpoint, "://") {
		o.common.invalid("endpoint %q: want tcp://host:port, ipc://path or inproc://name", endpoint)
	}
	set, err := o.common.settings()
	if err != nil {
		return nil, err
	}
	cd, err := codec.New(codec.MaxStrLen(set.MaxStrLen), codec.MaxBinLen(set.MaxBinLen), codec.MaxEntries(set.MaxEntries))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	c := &Client{
		endpoint: endpoint,
		set:      set,
		service:  set.DefaultService,
		timeout:  set.ReplyTimeout,
		compress: set.HugeDataCompress,
		log:      o.common.log(),
		codec:    cd,
		zctx:     o.common.zctx,
		pending:  newPendingTable(set.MessageMax),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		newID:    randomID,
		retry:    newRetrier(o.retry),
	}
	c.window, c.flowMD = flowPairs(set)
	c.anySpec = &callSpec{value: cd.Decode, checked: true, huge: cd.DecodeOwned, item: cd.Decode, perMsg: set.ReplyTimeout}
	if o.service != "" {
		c.service = o.service
	}
	if o.timeout > 0 {
		c.timeout = o.timeout
	}
	if o.compressor != "" {
		c.compress = o.compressor
	}
	if _, ok := chunk.Lookup(c.compress); !ok {
		return nil, fmt.Errorf("%w: unknown compressor %q (have %v)", ErrInvalidOption, c.compress, chunk.Names())
	}
	c.handler = Chain(o.common.mws...)(HandlerFunc(c.roundTrip))
	if c.zctx == nil {
		if c.zctx, err = zmq.NewContext(); err != nil {
			return nil, fmt.Errorf("gate: zmq context: %w", err)
		}
		c.ownZctx = true
	}
	e, err := newEngine(set.MessageMax + 64)
	if err != nil {
		if c.ownZctx {
			_ = c.zctx.Term()
		}
		return nil, fmt.Errorf("gate: client: %w", err)
	}
	c.loop = &clientLoop{c: c, e: e}
	c.out = e.out
	ready := make(chan error, 1)
	go c.loop.run(ready)
	if err := <-ready; err != nil {
		<-c.done
		if c.ownZctx {
			_ = c.zctx.Term()
		}
		return nil, err
	}
	return c, nil
}

func randomID() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}

// Close fails every pending call with [ErrClosed], closes the socket and
// waits for the loop to exit. A zmq context the client created is
// terminated; one given with WithZMQContext is not. Close is idempotent and
// always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.out.Wake()
	})
	<-c.done
	return nil
}

func (c *Client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Pending returns the number of calls awaiting replies.
func (c *Client) Pending() int { return c.pending.len() }

// Call calls method with args and returns the decoded result: nil, bool,
// int64 (uint64 above MaxInt64), float64, string, []byte, []any,
// map[string]any, time.Time. A final argument of type [Kwargs] is sent as
// keyword arguments.
//
// Every map arrives as a map[string]any: a key that is not a str becomes
// the string Python's str() gives it, as json.dumps does (1 → "1",
// 1.5 → "1.5", True → "True", None → "None", bin → its bytes), and a reply
// in which two keys of one map become the same string (1 and "1") fails
// with an error naming both keys. Use [CallAs] with a typed map
// (map[int]string) or struct to keep the keys' types.
//
// method is "Service.method"; the service may contain dots (the last dot
// separates it from the method: "a.b.foo" calls foo of service "a.b"); a
// bare "method" calls the default service (Settings.DefaultService,
// "GateRPC", or [WithDefaultService]).
//
// When ctx has no deadline the call times out after the client's default
// timeout ([WithTimeout], Settings.ReplyTimeout by default). The remaining
// budget travels with the request so that brokers and workers stop when the
// caller gives up; when ctx is done first the call is dropped and
// Gate.cancel is sent to the broker.
//
// A method that streams has its items collected into a []any (use
// [Client.Stream] to consume them one by one). A HugeData reply is
// reassembled and decompressed on the caller's goroutine and returned as
// the value it carries.
//
// Errors: a remote exception is an [*Error] with the code derived from
// its class (CodeOf), Class, Message (the repr) and Traceback; [ErrClosed],
// [ErrBrokerLost] (the broker went silent while the call was pending),
// [ErrTimeout], ctx errors, and *Error with ResourceExhausted when the
// pending table (Settings.MessageMax) stayed full until the deadline.
func (c *Client) Call(ctx context.Context, method string, args ...any) (any, error) {
	args, kw := splitKW(args)
	return c.CallKW(ctx, method, args, kw)
}

// CallKW is [Client.Call] with explicit keyword arguments.
func (c *Client) CallKW(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	svc, fn := c.splitMethod(method)
	return c.invokeValue(ctx, svc, fn, args, kwargs, c.anySpec)
}

// CallAs calls method like [Client.Call] (or [ServiceClient.Call] when on
// is a service handle) and decodes the result into a T (structs with
// `msgpack:"name"` tags, typed slices and maps, scalars...). A streamed
// reply is collected and decoded as an array.
func CallAs[T any](ctx context.Context, on Caller, method string, args ...any) (T, error) {
	args, kw := splitKW(args)
	c, svc, fn := on.target(method) // typed.go
	v, err := c.invokeValue(ctx, svc, fn, args, kw, typedSpec[T](c))
	if err != nil {
		var zero T
		return zero, err
	}
	if t, ok := v.(T); ok {
		return t, nil
	}
	// A collected stream ([]any): re-encode it and decode into T.
	var t T
	b, err := c.codec.Marshal(v)
	if err == nil {
		err = c.codec.Unmarshal(b, &t)
	}
	if err != nil {
		return t, Errorf(InvalidArgument, "decode %s.%s result into %T: %v", svc, fn, t, err)
	}
	return t, nil
}

// ServiceClient calls the methods of one service. Get one with
// [Client.Service]; it is a small value, safe for concurrent use.
type ServiceClient struct {
	c    *Client
	name string
}

// Service returns a handle calling the methods of the named service:
// c.Service("SRkv").Call(ctx, "test", ...) calls SRkv.test.
func (c *Client) Service(name string) ServiceClient { return ServiceClient{c: c, name: name} }

// Name returns the service name.
func (s ServiceClient) Name() string { return s.name }

// Call calls the method of the service; see [Client.Call].
func (s ServiceClient) Call(ctx context.Context, method string, args ...any) (any, error) {
	args, kw := splitKW(args)
	return s.c.invokeValue(ctx, s.name, method, args, kw, s.c.anySpec)
}

// CallKW calls the method with explicit keyword arguments.
func (s ServiceClient) CallKW(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	return s.c.invokeValue(ctx, s.name, method, args, kwargs, s.c.anySpec)
}

// Stream calls a streaming method of the service; see [Client.Stream].
func (s ServiceClient) Stream(ctx context.Context, method string, args ...any) (*Stream, error) {
	args, kw := splitKW(args)
	return s.c.openStream(ctx, s.name, method, args, kw, anySpec(s.c))
}

// splitMethod splits "a.b.method" at the last dot.
func (c *Client) splitMethod(method string) (service, fn string) {
	if i := strings.LastIndexByte(method, '.'); i >= 0 {
		return method[:i], method[i+1:]
	}
	return c.service, method
}

func splitKW(args []any) ([]any, map[string]any) {
	if n := len(args); n > 0 {
		if kw, ok := args[n-1].(Kwargs); ok {
			return args[:n-1], kw
		}
	}
	return args, nil
}

// callSpec tells the innermost handler how to decode values. It travels on
// the Request (Request.spec) from the call method, through the
// middleware, to roundTrip.
type callSpec struct {
	value func(raw []byte) (any, error) // single results
	// checked: value fails on anything but one valid msgpack value within
	// the codec's caps (Decode, Unmarshal), so a single reply's result
	// may be decoded without DecodeReply validating it first.
	checked bool
	// huge decodes a reassembled HugeData payload, which it owns: bins
	// alias it, and its size (bounded by HugeDataMaxSize) is the only cap
	// on one str or bin (not MaxBinLen/MaxStrLen).
	huge func(raw []byte) (any, error)
	item func(raw []byte) (any, error) // stream items
	// perMsg bounds the wait for each message after the first (stream
	// items, HugeData chunks); first bounds the wait for the first one
	// (0 = only ctx).
	perMsg, first time.Duration
	// collect: items are kept by the writer (Call) rather than handed to a
	// reader, so the handler bounds their total size; an item counts as
	// consumed once the writer took it.
	collect bool
	// reader: an application reads the items (Stream, HugeReader) and
	// reports their consumption itself; a producer overrunning the
	// window fails the call.
	reader bool
	// passHuge: HugeData chunks go to the writer undecompressed (as
	// Reply.Value, a []byte) for a HugeReader to decompress.
	passHuge bool
	// cur is the call of the current attempt, set by roundTrip before any
	// reply reaches the writer: a reader reports consumption to it.
	cur     *call
	attempt int // retries before this attempt (see Request.Attempt)
}

// anySpec returns a fresh copy of the client's generic spec (made once:
// its method values would cost two allocations per call).
func anySpec(c *Client) *callSpec {
	s := *c.anySpec
	return &s
}

func typedSpec[T any](c *Client) *callSpec {
	dec := func(raw []byte) (any, error) {
		var t T
		if err := c.codec.Unmarshal(raw, &t); err != nil {
			return nil, Errorf(InvalidArgument, "decode result into %T: %v", t, err)
		}
		return t, nil
	}
	huge := func(raw []byte) (any, error) {
		var t T
		if err := c.codec.UnmarshalOwned(raw, &t); err != nil {
			return nil, Errorf(InvalidArgument, "decode result into %T: %v", t, err)
		}
		return t, nil
	}
	return &callSpec{value: dec, checked: true, huge: huge, item: c.codec.Decode, perMsg: c.set.ReplyTimeout}
}

// newRequest builds the Request the middleware chain sees.
func (c *Client) newRequest(ctx context.Context, service, fn string, args []any, kwargs map[string]any) (*Request, error) {
	req := new(Request)
	if err := c.initRequest(ctx, req, service, fn, args, kwargs); err != nil {
		return nil, err
	}
	return req, nil
}

// initRequest fills *req as newRequest does.
func (c *Client) initRequest(ctx context.Context, req *Request, service, fn string, args []any, kwargs map[string]any) error {
	if service == "" || fn == "" {
		return Errorf(InvalidArgument, "method %q: want \"Service.method\" or \"method\"", service+"."+fn)
	}
	body, err := c.codec.EncodeRequestBody(fn, args, kwargs)
	if err != nil {
		return Errorf(InvalidArgument, "%s.%s: encode arguments: %v", service, fn, err)
	}
	*req = Request{
		Service:  service,
		Method:   fn,
		ID:       c.newID(),
		Metadata: map[string]string{},
		Args:     args,
		Kwargs:   kwargs,
		Body:     body,
	}
	if d, ok := ctx.Deadline(); ok {
		req.Deadline = d
	}
	req.setRole(RoleClient)
	return nil
}

// specRequest is a Request and its call spec in one allocation.
type specRequest struct {
	req  Request
	spec callSpec
}

// collector is the ReplyWriter of Call: it keeps the single value, or the
// items of a stream.
type collector struct {
	value    any
	items    []any
	streamed bool
	size     int64
	max      int64
}

func (w *collector) Send(_ context.Context, r *Reply) error {
	switch r.Kind {
	case ReplySingle, ReplyHugeEnd:
		w.value = r.Value
	case ReplyStreamItem:
		w.size += int64(r.Size())
		if w.size > w.max {
			return fmt.Errorf("%w: streamed reply exceeds %d bytes; read it with Client.Stream", ErrTooLarge, w.max)
		}
		w.items = append(w.items, r.Value)
		w.streamed = true
	case ReplyStreamEnd:
		w.streamed = true
	}
	return nil
}

func (w *collector) result() any {
	if w.streamed {
		if w.items == nil {
			return []any{}
		}
		return w.items
	}
	return w.value
}

// invokeValue runs one call through the middleware chain and returns its
// result. spec is copied, not modified.
func (c *Client) invokeValue(ctx context.Context, service, fn string, args []any, kwargs map[string]any, spec *callSpec) (any, error) {
	if c.isClosing() {
		return nil, ErrClosed
	}
	parent := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	sr := &specRequest{spec: *spec}
	req := &sr.req
	if err := c.initRequest(ctx, req, service, fn, args, kwargs); err != nil {
		return nil, err
	}
	sr.spec.collect = true
	req.spec = &sr.spec
	w, err := c.serveWithRetry(ctx, req)
	if err != nil {
		return nil, c.ctxError(parent, ctx, service, fn, err)
	}
	return w.result(), nil
}

// ctxError turns a ctx error of the call into the documented errors: the
// default timeout becomes ErrTimeout, the caller's ctx errors stay
// matchable with errors.Is.
func (c *Client) ctxError(parent, ctx context.Context, service, fn string, err error) error {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	if parent.Err() == nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %s.%s: no reply within %v", ErrTimeout, service, fn, c.timeout)
	}
	return fmt.Errorf("gate: %s.%s: %w", service, fn, err)
}

// roundTrip is the innermost client handler: it registers the call, sends
// the request through the loop and feeds every reply message to w.
func (c *Client) roundTrip(ctx context.Context, req *Request, w ReplyWriter) error {
	spec := req.spec
	if spec == nil { // a Request the middleware built from scratch
		spec = anySpec(c)
		spec.collect = true
	}
	meta := wire.RequestMeta{MD: c.requestMD(req.Metadata)}
	if !req.Deadline.IsZero() {
		meta.Budget = time.Until(req.Deadline)
		if meta.Budget <= 0 {
			return context.DeadlineExceeded
		}
	}
	if len(meta.MD) > wire.MaxExtPairs {
		return Errorf(InvalidArgument, "%d metadata entries (%d of them for flow control), at most %d",
			len(meta.MD), len(c.flowMD), wire.MaxExtPairs)
	}
	id := wire.EncodeRequestID(req.ID, meta)
	if len(id) > wire.MaxExtLen {
		return Errorf(InvalidArgument, "request id with metadata is %d bytes, at most %d", len(id), wire.MaxExtLen)
	}
	maxBytes := c.set.HugeDataMaxSize + 4<<20
	cl := newCall(id, req.Service, maxBytes)
	cl.flow.init(c, spec, maxBytes)
	spec.cur = cl
	if err := c.pending.add(ctx, cl); err != nil {
		return err
	}
	frames := wire.ClientRequest{Service: req.Service, RequestID: id, Body: req.Body}.Frames()
	if err := c.out.PushWait(ctx, outMsg{frames: frames, c: cl}); err != nil {
		c.pending.remove(cl)
		if errors.Is(err, zmqx.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return c.receive(ctx, cl, spec, w)
}

// abandon drops a call that is still pending and tells the broker to
// cancel it (Gate.cancel, a gate extension that 0.2.12 brokers ignore).
func (c *Client) abandon(cl *call) {
	if !c.pending.remove(cl) {
		return
	}
	_ = c.out.Push(outMsg{frames: c.cancelFrames(cl.id)})
}

// receive reads the call's reply messages, decodes them on the caller's
// goroutine and hands each one to w.
func (c *Client) receive(ctx context.Context, cl *call, spec *callSpec, w ReplyWriter) (err error) {
	var timer *time.Timer
	var asm *chunk.Assembler
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if asm != nil {
			_ = asm.Close()
		}
		if err != nil {
			c.abandon(cl)
		}
	}()
	wait := spec.first
	for {
		m, err := cl.next(ctx, wait, &timer)
		if err != nil {
			return err
		}
		wait = spec.perMsg
		switch m.kind {
		case ReplySingle:
			// The common layout: decode the result in one pass (Decode
			// and Unmarshal validate it); any error takes the full path.
			if raw, ok := codec.ResultBytes(m.payload); ok && spec.checked {
				if v, err := spec.value(raw); err == nil {
					return w.Send(ctx, &Reply{Kind: m.kind, Value: v, Body: m.body})
				}
			}
			raw, exc, err := c.codec.DecodeReply(m.payload)
			if err != nil {
				e := Errorf(Internal, "%s: malformed reply: %v", cl.service, err)
				_ = w.Send(ctx, &Reply{Kind: m.kind, Err: e, Body: m.body})
				return e
			}
			if exc != nil {
				e := remoteError(exc)
				if err := w.Send(ctx, &Reply{Kind: m.kind, Err: e, Body: m.body}); err != nil {
					return err
				}
				return e
			}
			v, err := spec.value(raw)
			if err != nil {
				return err
			}
			return w.Send(ctx, &Reply{Kind: m.kind, Value: v, Body: m.body})

		case ReplyStreamItem:
			v, err := spec.item(m.payload)
			if err != nil {
				return Errorf(Internal, "malformed stream item: %v", err)
			}
			if err := w.Send(ctx, &Reply{Kind: m.kind, Value: v, Body: m.body}); err != nil {
				return err
			}
			if !spec.reader {
				c.consumed(ctx, cl, 1, int64(len(m.payload)))
			}

		case ReplyStreamEnd:
			return w.Send(ctx, &Reply{Kind: m.kind, Body: m.body})

		case ReplyStreamError, ReplyHugeError:
			var e *Error
			if exc, err := c.codec.DecodeTriple(m.payload); err != nil {
				e = Errorf(Internal, "malformed exception frame: %v", err)
			} else {
				e = remoteError(exc)
			}
			if err := w.Send(ctx, &Reply{Kind: m.kind, Err: e, Body: m.body}); err != nil {
				return err
			}
			return e

		case ReplyHugeChunk:
			if spec.passHuge {
				if err := w.Send(ctx, &Reply{Kind: m.kind, Value: m.payload, Body: m.body}); err != nil {
					return err
				}
				continue
			}
			if asm == nil {
				// The payload's msgpack header sizes the buffer once, and a
				// header announcing more than HugeDataMaxSize fails at once.
				asm, err = chunk.NewAssembler(chunk.WithCompression(c.compress), chunk.WithMaxSize(c.set.HugeDataMaxSize),
					chunk.WithSizeHint(codec.EncodedSize))
				if err != nil {
					return Errorf(Internal, "huge reply: %v", err)
				}
			}
			if err := asm.Write(m.payload); err != nil {
				return hugeError(err)
			}
			c.consumed(ctx, cl, 1, int64(len(m.payload)))
			if err := w.Send(ctx, &Reply{Kind: m.kind, Body: m.body}); err != nil {
				return err
			}

		case ReplyHugeEnd:
			if spec.passHuge {
				return w.Send(ctx, &Reply{Kind: m.kind, Body: m.body})
			}
			if asm == nil {
				return Errorf(Internal, "huge reply: end marker without data")
			}
			payload, err := asm.Finish()
			if err != nil {
				return hugeError(err)
			}
			v, err := spec.huge(payload)
			if err != nil {
				return Errorf(Internal, "huge reply: decode %d bytes: %v", len(payload), err)
			}
			return w.Send(ctx, &Reply{Kind: m.kind, Value: v, Body: m.body})
		}
	}
}

func hugeError(err error) error {
	if errors.Is(err, chunk.ErrTooLarge) {
		return fmt.Errorf("%w: huge reply: %v", ErrTooLarge, err)
	}
	return Errorf(Internal, "huge reply: %v", err)
}

// remoteError converts a decoded exception into an *Error.
func remoteError(exc *codec.Exception) *Error {
	return &Error{Code: codeForClass(exc.Class), Class: exc.Class, Message: exc.Repr, Traceback: exc.Traceback}
}

// internalFrames builds a request to the broker's internal service with a
// fresh plain id that no call owns: its reply is ignored.
func (c *Client) internalFrames(fn string, args []any) [][]byte {
	body, _ := c.codec.EncodeRequestBody(fn, args, nil)
	return wire.ClientRequest{Service: c.set.InternalService, RequestID: randomID(), Body: body}.Frames()
}

// cancelFrames builds Gate.cancel(request_id), a gate extension: a gate
// broker stops the request (and tells a gate worker); a 0.2.12 broker
// ignores the unknown function.
func (c *Client) cancelFrames(id []byte) [][]byte {
	return c.internalFrames("cancel", []any{id})
}
