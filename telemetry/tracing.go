package telemetry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// Span names other than "Service/method".
const (
	SpanQueueWait = "queue wait" // broker INTERNAL span: enqueued → assigned to a worker, for a request that waited
	SpanDispatch  = "dispatch"   // broker CLIENT span: assigned → final reply; its context goes to the worker
)

// Tracing returns middleware that traces calls at the client and the
// worker, switching on req.Info().Role (the broker hop is traced by
// BrokerObserver, on the broker's loop):
//
//   - client: a CLIENT span "Service/method"; its context is injected into
//     req.Metadata for the broker.
//   - worker: a SERVER span "Service/method", child of the context in
//     req.Metadata, or a new root when there is none (a Python peer in the
//     path), marked gaterpc.parent.missing=true.
//
// A stream or huge reply is one span, ended when the handler returns (final
// reply, error or cancel), with item/chunk counts and sizes as attributes.
// Unknown methods (see WithMethods) get rpc.method="_OTHER",
// rpc.method_original and the span name "gaterpc".
//
// Options: WithTracerProvider, WithPropagators, WithMethods,
// WithMaxMethods, WithParentBasedSampling. Place Tracing first
// (outermost) in a Chain so that metrics and logs below it see the span.
// The middleware is safe for concurrent use.
func Tracing(opts ...Option) gate.Middleware {
	t := newTracing(opts)
	return func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			switch req.Info().Role {
			case gate.RoleClient:
				return t.client(ctx, req, w, next)
			case gate.RoleWorker:
				return t.worker(ctx, req, w, next)
			}
			return next.ServeRPC(ctx, req, w)
		})
	}
}

func newTracing(opts []Option) *tracing {
	c := newConfig(opts)
	t := &tracing{
		tracer:      c.tracerProvider().Tracer(ScopeName, trace.WithInstrumentationVersion(otel.Version()), trace.WithSchemaURL(semconvSchemaURL)),
		prop:        c.propagator(),
		methods:     newLabelSet(c.methods, c.maxMethods),
		parentBased: c.parentBased,
	}
	_, t.off = c.tracerProvider().(noop.TracerProvider)
	t.w3c = w3cFields(t.prop.Fields())
	if len(c.server) > 0 {
		t.server = trace.WithAttributes(c.server...)
	}
	t.starts = newCache(3*t.methods.max, func(k startKey) trace.SpanStartOption {
		return trace.WithAttributes(attrSystem, keyMethod.String(k.method), AttrRole.String(k.role.String()))
	})
	return t
}

type tracing struct {
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	methods *labelSet
	// starts holds the start attributes of known methods, per role, as
	// one ready SpanStartOption.
	starts *cache[startKey, trace.SpanStartOption]
	// server holds server.address/server.port of client spans (nil: not
	// known, WithServerAddress).
	server trace.SpanStartOption
	// parentBased: children of unsampled parents skip the SDK
	// (WithParentBasedSampling).
	parentBased bool
	// off: the provider is the no-op one, whose spans only carry their
	// parent's context forward; a hop then only propagates the context
	// (see noopHop).
	off bool
	// w3c: the propagator uses no keys but traceparent, tracestate and
	// baggage (TraceContext and Baggage, as telemetry/setup builds it).
	w3c bool
}

// w3cFields reports whether fields holds only W3C trace context and
// baggage keys.
func w3cFields(fields []string) bool {
	for _, f := range fields {
		if f != "traceparent" && f != "tracestate" && f != "baggage" {
			return false
		}
	}
	return true
}

type startKey struct {
	role   gate.Role
	method string // the label, "Service/method"
}

// Span kinds as ready options.
var (
	kindClient   = trace.WithSpanKind(trace.SpanKindClient)
	kindServer   = trace.WithSpanKind(trace.SpanKindServer)
	kindInternal = trace.WithSpanKind(trace.SpanKindInternal)
)

// describe returns the span name of req, its start attributes as one
// option, and its rpc.method attribute. The request size is set when the
// span finishes.
func (t *tracing) describe(req *gate.Request) (string, trace.SpanStartOption, attribute.KeyValue) {
	info := req.Info()
	method, known := t.methods.method(info)
	if known {
		return method, t.starts.get(startKey{info.Role, method}), keyMethod.String(method)
	}
	return describeOther(info)
}

// describeOther describes a request as one of an unknown method, without
// admitting its name to the method set.
func describeOther(info gate.Info) (string, trace.SpanStartOption, attribute.KeyValue) {
	return SystemName, trace.WithAttributes(attrSystem, keyMethod.String(OtherMethod), AttrRole.String(info.Role.String()),
		keyMethodOriginal.String(info.FullMethod())), keyMethod.String(OtherMethod)
}

// unsampledParent reports whether sc is a parent whose trace is not
// sampled. Its children are not sampled either (the SDK's default
// ParentBased sampler; anything else would record spans whose parent is
// missing), so they start without attributes: building the attribute
// option costs an allocation that a non-recording span throws away.
func unsampledParent(sc trace.SpanContext) bool { return sc.IsValid() && !sc.IsSampled() }

// unsampledChild returns ctx with a non-recording span that stands for a
// child of parent, a span context whose trace is not sampled: the same
// trace id, flags and trace state, a new span id, as the SDK gives the
// span it does not record under a parent-based sampler. It costs no span
// start in the SDK (no sampler call, no locked id generator).
func unsampledChild(ctx context.Context, parent trace.SpanContext) context.Context {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.LittleEndian.PutUint64(sid[:], rand.Uint64())
	}
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    parent.TraceID(),
		SpanID:     sid,
		TraceFlags: parent.TraceFlags() &^ trace.FlagsSampled,
		TraceState: parent.TraceState(),
	}))
}

// noopHop reports whether a hop in ctx can skip starting a span: the
// provider is the no-op one and ctx holds no recording span. The no-op
// tracer's Start would return ctx with the same span context (the
// parent's, or none), so only the propagation is left to do; the start
// allocates the span start options and a context value.
func (t *tracing) noopHop(ctx context.Context) bool {
	return t.off && !trace.SpanFromContext(ctx).IsRecording()
}

func (t *tracing) client(ctx context.Context, req *gate.Request, w gate.ReplyWriter, next gate.Handler) error {
	if req.Metadata == nil {
		req.Metadata = make(map[string]string, 3)
	}
	if t.noopHop(ctx) {
		t.prop.Inject(ctx, metadataCarrier(req.Metadata))
		return next.ServeRPC(ctx, req, w)
	}
	parent := trace.SpanContextFromContext(ctx)
	if t.parentBased && unsampledParent(parent) {
		ctx = unsampledChild(ctx, parent)
		t.prop.Inject(ctx, metadataCarrier(req.Metadata))
		return next.ServeRPC(ctx, req, w)
	}
	name, attrs, _ := t.describe(req)
	var span trace.Span
	if unsampledParent(parent) {
		ctx, span = t.tracer.Start(ctx, name, kindClient)
	} else if t.server != nil {
		ctx, span = t.tracer.Start(ctx, name, kindClient, attrs, t.server)
	} else {
		ctx, span = t.tracer.Start(ctx, name, kindClient, attrs)
	}
	t.prop.Inject(ctx, metadataCarrier(req.Metadata))
	if !span.IsRecording() {
		// Not sampled: only the context matters, no outcome to record.
		err := next.ServeRPC(ctx, req, w)
		span.End()
		return err
	}
	if n := req.Attempt(); n > 1 {
		span.SetAttributes(AttrAttempt.Int(n))
	}
	rc := &replyCounter{ReplyWriter: w}
	err := next.ServeRPC(ctx, req, rc)
	finish(span, rc, err, reqSizeOf(req), false)
	span.End()
	return err
}

// Start options of a span whose remote parent is missing.
var (
	optNewRoot       = trace.WithNewRoot()
	optParentMissing = trace.WithAttributes(AttrRemoteParent.Bool(true))
)

// extract returns ctx with the remote parent from md, and whether there is
// one; without, the span must start as a new root (optNewRoot,
// optParentMissing). unsampled reports a remote parent whose trace is not
// sampled (see unsampledParent).
func (t *tracing) extract(ctx context.Context, md map[string]string) (_ context.Context, remote, unsampled bool) {
	ctx = t.prop.Extract(ctx, metadataCarrier(md))
	sc := trace.SpanContextFromContext(ctx)
	remote = sc.IsValid() && sc.IsRemote()
	return ctx, remote, remote && !sc.IsSampled()
}

// unsampledW3C returns the traceparent of md when it is all the
// propagator would extract from md and its trace is not sampled: a W3C
// propagator (t.w3c), no tracestate, no baggage.
func (t *tracing) unsampledW3C(md map[string]string) (string, bool) {
	if !t.w3c || !t.parentBased || t.off {
		return "", false
	}
	h := md["traceparent"]
	if !unsampledTraceparent(h) || md["tracestate"] != "" || md["baggage"] != "" {
		return "", false
	}
	return h, true
}

// unsampledChildW3C is unsampledChild of the parent in traceparent h
// (checked by unsampledTraceparent), without extracting it into a
// context first.
func unsampledChildW3C(ctx context.Context, h string) context.Context {
	var tid trace.TraceID
	for i := range tid {
		tid[i], _ = hexByte(h[3+2*i], h[4+2*i])
	}
	flags, _ := hexByte(h[53], h[54])
	return unsampledChild(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    tid,
		TraceFlags: trace.TraceFlags(flags) & (trace.FlagsSampled | trace.FlagsRandom),
		Remote:     true,
	}))
}

func (t *tracing) worker(ctx context.Context, req *gate.Request, w gate.ReplyWriter, next gate.Handler) error {
	if h, ok := t.unsampledW3C(req.Metadata); ok {
		// What the general path below does for an unsampled parent,
		// without the extracted context in between.
		return next.ServeRPC(unsampledChildW3C(ctx, h), req, w)
	}
	ctx, remote, unsampled := t.extract(ctx, req.Metadata)
	if t.noopHop(ctx) {
		return next.ServeRPC(ctx, req, w)
	}
	if unsampled && t.parentBased {
		ctx = unsampledChild(ctx, trace.SpanContextFromContext(ctx))
		return next.ServeRPC(ctx, req, w)
	}
	name, attrs, _ := t.describe(req)
	ctx, span := t.startExtracted(ctx, remote, unsampled, time.Time{}, name, attrs)
	if !span.IsRecording() {
		err := next.ServeRPC(ctx, req, w)
		span.End()
		return err
	}
	rc := &replyCounter{ReplyWriter: w}
	err := next.ServeRPC(ctx, req, rc)
	finish(span, rc, err, reqSizeOf(req), true)
	span.End()
	return err
}

// brokerCall is the trace of one request at the broker: the SERVER span,
// and per dispatch a "dispatch" span, preceded by a "queue wait" span when
// the request waited for a worker. BrokerObserver drives it from the
// broker's loop.
type brokerCall struct {
	t       *tracing
	sctx    context.Context // holds span
	span    trace.Span
	method  attribute.KeyValue
	start   time.Time
	reqSize int // -1: unknown

	dispatches []trace.Span // on the broker's loop only: no lock
}

// startServerAs starts the SERVER span of req at the broker or the
// worker, named name with the start attributes attrs: a child of the
// remote context in req.Metadata, or a new root marked
// gaterpc.parent.missing when there is none (a Python peer in the path).
// It starts at start, or now when start is zero, and returns method (the
// span's rpc.method attribute) back.
func (t *tracing) startServerAs(ctx context.Context, req *gate.Request, start time.Time, name string, attrs trace.SpanStartOption, method attribute.KeyValue) (context.Context, trace.Span, attribute.KeyValue) {
	ctx, remote, unsampled := t.extract(ctx, req.Metadata)
	ctx, span := t.startExtracted(ctx, remote, unsampled, start, name, attrs)
	return ctx, span, method
}

// startExtracted starts the SERVER span in ctx, which holds what extract
// found (remote, unsampled).
func (t *tracing) startExtracted(ctx context.Context, remote, unsampled bool, start time.Time, name string, attrs trace.SpanStartOption) (context.Context, trace.Span) {
	if unsampled {
		return t.tracer.Start(ctx, name, kindServer)
	}
	opts := make([]trace.SpanStartOption, 2, 5)
	opts[0], opts[1] = kindServer, attrs
	if !remote {
		opts = append(opts, optNewRoot, optParentMissing)
	}
	if !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	return t.tracer.Start(ctx, name, opts...)
}

// setBroker fills bc for the SERVER span from startServer.
func (t *tracing) setBroker(sctx context.Context, bc *brokerCall, span trace.Span, method attribute.KeyValue, req *gate.Request, start time.Time) {
	bc.t, bc.sctx, bc.span, bc.method, bc.start, bc.reqSize = t, sctx, span, method, start, -1
	if n, ok := requestSize(req); ok {
		bc.reqSize = n
	}
}

// dispatch records one dispatch: a "queue wait" span Enqueued → Assigned
// when the request waited (Assigned after Enqueued), and the start of a
// "dispatch" span, carrying the wait as gaterpc.queue.wait_s, whose
// context replaces the trace context in d.Metadata.
//
// When the SERVER span is not recording (its trace is not sampled), the
// "queue wait" span is left out and the "dispatch" span starts bare: it
// is not recorded either, and only its context matters, for the worker.
func (bc *brokerCall) dispatch(d *broker.Dispatch) {
	t := bc.t
	if d.Metadata == nil {
		d.Metadata = make(map[string]string, 3)
	}
	if !bc.span.IsRecording() {
		dctx, ds := t.tracer.Start(bc.sctx, SpanDispatch, kindClient)
		t.prop.Inject(dctx, metadataCarrier(d.Metadata))
		bc.dispatches = append(bc.dispatches, ds)
		return
	}
	enq := d.Enqueued
	if enq.IsZero() || enq.After(d.Assigned) {
		enq = d.Assigned
	}
	attempt := len(bc.dispatches) + 1
	wait := AttrQueueWait.Float64(d.Assigned.Sub(enq).Seconds())
	if enq.Before(d.Assigned) {
		// The request waited for a worker: the wait gets its own span. A
		// request dispatched as it arrived (the broker's loop stamps both
		// with one clock reading) has none, only the attribute on its
		// "dispatch" span: a zero-length span per call would cost the
		// broker's loop a third of its tracing work and tell nothing.
		_, qs := t.tracer.Start(bc.sctx, SpanQueueWait, kindInternal, trace.WithTimestamp(enq),
			trace.WithAttributes(attrSystem, bc.method, wait, AttrDispatchAttempt.Int(attempt)))
		qs.End(trace.WithTimestamp(d.Assigned))
	}
	dattrs := []attribute.KeyValue{attrSystem, bc.method, AttrDispatchAttempt.Int(attempt), wait}
	if len(d.Worker) > 0 {
		dattrs = append(dattrs, AttrWorkerID.String(hex.EncodeToString(d.Worker)))
	}
	dctx, ds := t.tracer.Start(bc.sctx, SpanDispatch, kindClient, trace.WithTimestamp(d.Assigned),
		trace.WithAttributes(dattrs...))
	t.prop.Inject(dctx, metadataCarrier(d.Metadata))
	bc.dispatches = append(bc.dispatches, ds)
}

// end ends every span at end with the outcome in rc and err. A request
// that timed out or expired before any dispatch gets a "queue wait" span
// marked gaterpc.queue.expired.
func (bc *brokerCall) end(rc *replyCounter, err error, end time.Time) {
	t := bc.t
	ds := bc.dispatches
	bc.dispatches = nil
	if !bc.span.IsRecording() {
		for _, d := range ds {
			d.End()
		}
		bc.span.End()
		return
	}
	if len(ds) == 0 {
		if c := rc.code(err); c == gate.DeadlineExceeded || c == gate.ResourceExhausted {
			_, qs := t.tracer.Start(bc.sctx, SpanQueueWait, kindInternal, trace.WithTimestamp(bc.start),
				trace.WithAttributes(attrSystem, bc.method, AttrQueueExpired.Bool(true), AttrQueueWait.Float64(end.Sub(bc.start).Seconds())))
			qs.SetStatus(codes.Error, c.String())
			qs.End(trace.WithTimestamp(end))
		}
	}
	for _, d := range ds {
		finish(d, rc, err, -1, false)
		d.End(trace.WithTimestamp(end))
	}
	finish(bc.span, rc, err, bc.reqSize, true)
	bc.span.End(trace.WithTimestamp(end))
}

// serverErrorCodes are the codes that make a SERVER span an error (as in
// the gRPC conventions); on CLIENT spans every code but OK is an error.
func serverError(c gate.Code) bool {
	switch c {
	case gate.Unknown, gate.DeadlineExceeded, gate.Unimplemented, gate.Internal, gate.Unavailable:
		return true
	}
	return false
}

// reqSizeOf is the request size of req for finish: -1 when unknown.
func reqSizeOf(req *gate.Request) int {
	if n, ok := requestSize(req); ok {
		return n
	}
	return -1
}

// finish sets the outcome attributes and status of span; reqSize < 0
// leaves out the request size.
func finish(span trace.Span, rc *replyCounter, err error, reqSize int, server bool) {
	if !span.IsRecording() {
		return
	}
	code := rc.code(err)
	// SetAttributes copies the attributes, so the slice goes back to the
	// pool afterwards.
	buf := attrPool.Get().(*[]attribute.KeyValue)
	defer func() {
		clear(*buf)
		attrPool.Put(buf)
	}()
	attrs := (*buf)[:0]
	attrs = append(attrs, keyStatusCode.String(code.String()), AttrReplyKind.String(rc.replyKindName()))
	if rc.replies > 0 {
		attrs = append(attrs, AttrResponseSize.Int(rc.bytes))
	}
	if rc.streamItems > 0 || rc.kind == gate.ReplyStreamItem {
		attrs = append(attrs, AttrStreamItems.Int(rc.streamItems))
	}
	if rc.hugeChunks > 0 || rc.kind == gate.ReplyHugeChunk {
		attrs = append(attrs, AttrHugeChunks.Int(rc.hugeChunks), AttrHugeCompressed.Int(rc.hugeBytes))
	}
	if reqSize >= 0 {
		attrs = append(attrs, AttrRequestSize.Int(reqSize))
	}
	if code != gate.OK {
		attrs = append(attrs, keyErrorType.String(code.String()))
		e := err
		if e == nil {
			e = rc.replyErr
		}
		var ge *gate.Error
		if errors.As(e, &ge) && ge.Class != "" {
			attrs = append(attrs, AttrErrorClass.String(ge.Class))
		}
		if !server || serverError(code) {
			msg := code.String()
			if e != nil {
				msg = e.Error()
			}
			span.SetStatus(codes.Error, msg)
		}
	}
	span.SetAttributes(attrs...)
	*buf = attrs
}

var attrPool = sync.Pool{New: func() any {
	b := make([]attribute.KeyValue, 0, 10)
	return &b
}}
