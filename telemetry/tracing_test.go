package telemetry

import (
	"context"
	"maps"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

var testProp = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

func newRecorder(t testing.TB) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return sr, tp
}

// fakeHops runs one call through client → broker → worker middleware,
// copying metadata between hops as the real components do.
type fakeHops struct {
	mw gate.Middleware // client and worker
	bo broker.Observer // broker
	// worker is the user's method; nil means the call never reaches a
	// worker (brokerErr is returned by the broker).
	worker    func(ctx context.Context, w gate.ReplyWriter) error
	brokerErr error
	// dropMetadata simulates a Python broker that forwards no metadata.
	dropMetadata bool
	queued       time.Duration
	workerMD     map[string]string // what the worker received
	sink         []*gate.Reply
}

// nopRequest stands for a request BrokerObserver does not follow.
type nopRequest struct{}

func (nopRequest) Dispatch(*broker.Dispatch)       {}
func (nopRequest) Reply(*gate.Reply)               {}
func (nopRequest) Finish(time.Time, string, error) {}

func (f *fakeHops) call(ctx context.Context, service, method string) error {
	req := &gate.Request{Service: service, Method: method, Body: [][]byte{[]byte("func"), []byte("args"), []byte("kw")}}
	gatehook.SetRole(req, gate.RoleClient)
	client := f.mw(gate.HandlerFunc(func(ctx context.Context, creq *gate.Request, cw gate.ReplyWriter) error {
		// The broker receives a fresh ctx: only the metadata travels.
		breq := &gate.Request{Service: creq.Service, Method: creq.Method, Body: creq.Body, Metadata: maps.Clone(creq.Metadata)}
		gatehook.SetRole(breq, gate.RoleBroker)
		// The broker hop: BrokerObserver, called as the broker's loop does.
		now := time.Now()
		var ro broker.RequestObserver
		if f.bo != nil {
			ro = f.bo.Observe(breq, now.Add(-f.queued))
		}
		if ro == nil {
			ro = nopRequest{}
		}
		if f.worker == nil {
			outcome := broker.OutcomeNoService
			if gate.CodeOf(f.brokerErr) == gate.DeadlineExceeded {
				outcome = broker.OutcomeTimeout
			}
			ro.Finish(time.Now(), outcome, f.brokerErr)
			return f.brokerErr
		}
		d := &broker.Dispatch{Service: breq.Service, Enqueued: now.Add(-f.queued), Assigned: now, Metadata: maps.Clone(breq.Metadata)}
		if d.Metadata == nil {
			d.Metadata = map[string]string{}
		}
		ro.Dispatch(d)
		wreq := &gate.Request{Service: breq.Service, Method: breq.Method, Body: breq.Body, Metadata: maps.Clone(d.Metadata)}
		if f.dropMetadata {
			wreq.Metadata = nil
		}
		f.workerMD = wreq.Metadata
		gatehook.SetRole(wreq, gate.RoleWorker)
		worker := f.mw(gate.HandlerFunc(func(wctx context.Context, _ *gate.Request, ww gate.ReplyWriter) error {
			return f.worker(wctx, ww)
		}))
		// Replies relay through the broker, which shows them to ro.
		bw := gate.ReplyWriterFunc(func(ctx context.Context, r *gate.Reply) error {
			ro.Reply(r)
			return cw.Send(ctx, r)
		})
		err := worker.ServeRPC(context.Background(), wreq, bw)
		outcome := broker.OutcomeOK
		if err != nil {
			ro.Reply(&gate.Reply{Kind: gate.ReplySingle, Err: err}) // the worker's exception reply
			outcome = broker.OutcomeError
		}
		ro.Finish(time.Now(), outcome, nil)
		return err
	}))
	sink := gate.ReplyWriterFunc(func(_ context.Context, r *gate.Reply) error { f.sink = append(f.sink, r); return nil })
	return client.ServeRPC(ctx, req, sink)
}

func attrOf(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// spanTree indexes ended spans by "kind name".
func spanTree(t *testing.T, spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		key := s.SpanKind().String() + " " + s.Name()
		if s.SpanKind() == trace.SpanKindServer {
			role, _ := attrOf(s, AttrRole)
			key += " " + role.AsString()
		}
		if _, dup := m[key]; dup {
			t.Errorf("two spans %q", key)
		}
		m[key] = s
	}
	return m
}

func wantChild(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q (%s) parent = %s, want %q (%s)", child.Name(), child.SpanKind(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
	}
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, k attribute.Key, want any) {
	t.Helper()
	v, ok := attrOf(s, k)
	if !ok {
		t.Errorf("span %s %q: no attribute %s", s.SpanKind(), s.Name(), k)
		return
	}
	if got := v.AsInterface(); got != want {
		t.Errorf("span %s %q: %s = %v (%T), want %v (%T)", s.SpanKind(), s.Name(), k, got, got, want, want)
	}
}

const (
	kClient = "client Svc/echo"
	kBroker = "server Svc/echo broker"
	// kBrokerOther is the broker's span of a request for a service no
	// worker has served (see BrokerObserver).
	kBrokerOther = "server gaterpc broker"
	kQueue       = "internal queue wait"
	kDispatch    = "client dispatch"
	kWorker      = "server Svc/echo worker"
)

// checkFullTree checks client → broker → {queue wait, dispatch → worker}
// for a request that waited in the broker's queue, client → broker →
// dispatch → worker for one dispatched as it arrived (queued false).
func checkFullTree(t *testing.T, m map[string]sdktrace.ReadOnlySpan, queued bool) {
	t.Helper()
	want := []string{kClient, kBroker, kDispatch, kWorker}
	if queued {
		want = append(want, kQueue)
	}
	for _, k := range want {
		if m[k] == nil {
			t.Fatalf("no span %q; have %v", k, keys(m))
		}
	}
	if len(m) != len(want) {
		t.Errorf("got spans %v, want %v", keys(m), want)
	}
	if m[kClient].Parent().IsValid() {
		t.Errorf("client span has a parent")
	}
	wantChild(t, m[kBroker], m[kClient])
	wantChild(t, m[kDispatch], m[kBroker])
	wantChild(t, m[kWorker], m[kDispatch])
	for _, s := range m {
		wantAttr(t, s, "rpc.system.name", "gaterpc")
		wantAttr(t, s, "rpc.method", "Svc/echo")
	}
	wantAttr(t, m[kDispatch], AttrDispatchAttempt, int64(1))
	if !queued {
		wantAttr(t, m[kDispatch], AttrQueueWait, 0.0)
		return
	}
	wantChild(t, m[kQueue], m[kBroker])
	if !m[kQueue].EndTime().Equal(m[kDispatch].StartTime()) {
		t.Errorf("queue wait ends %v, dispatch starts %v; want equal", m[kQueue].EndTime(), m[kDispatch].StartTime())
	}
	wantAttr(t, m[kQueue], AttrDispatchAttempt, int64(1))
	wait, _ := attrOf(m[kQueue], AttrQueueWait)
	wantAttr(t, m[kDispatch], AttrQueueWait, wait.AsFloat64())
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestTracingFakeHops(t *testing.T) {
	boom := gate.Errorf(gate.InvalidArgument, "boom")
	tests := []struct {
		name   string
		worker func(ctx context.Context, w gate.ReplyWriter) error
		check  func(t *testing.T, m map[string]sdktrace.ReadOnlySpan, err error)
	}{
		{
			name: "unary",
			worker: func(ctx context.Context, w gate.ReplyWriter) error {
				return w.Send(ctx, &gate.Reply{Kind: gate.ReplySingle, Value: "hi", Body: [][]byte{[]byte("hi")}})
			},
			check: func(t *testing.T, m map[string]sdktrace.ReadOnlySpan, err error) {
				checkFullTree(t, m, true)
				for _, k := range []string{kClient, kBroker, kWorker} {
					wantAttr(t, m[k], "rpc.response.status_code", "OK")
					wantAttr(t, m[k], AttrReplyKind, "single")
					wantAttr(t, m[k], AttrRequestSize, int64(10))
					if m[k].Status().Code == codes.Error {
						t.Errorf("%s status = %v", k, m[k].Status())
					}
				}
				wantAttr(t, m[kQueue], AttrQueueWait, 0.25)
				if got := m[kQueue].EndTime().Sub(m[kQueue].StartTime()); got != 250*time.Millisecond {
					t.Errorf("queue wait span lasts %v, want 250ms", got)
				}
			},
		},
		{
			name: "stream",
			worker: func(ctx context.Context, w gate.ReplyWriter) error {
				for range 3 {
					if err := w.Send(ctx, &gate.Reply{Kind: gate.ReplyStreamItem, Body: [][]byte{make([]byte, 8)}}); err != nil {
						return err
					}
				}
				return w.Send(ctx, &gate.Reply{Kind: gate.ReplyStreamEnd, Body: [][]byte{{0}}})
			},
			check: func(t *testing.T, m map[string]sdktrace.ReadOnlySpan, err error) {
				checkFullTree(t, m, true)
				for _, k := range []string{kClient, kBroker, kWorker, kDispatch} {
					wantAttr(t, m[k], AttrStreamItems, int64(3))
					wantAttr(t, m[k], AttrReplyKind, "stream")
					wantAttr(t, m[k], AttrResponseSize, int64(25))
				}
			},
		},
		{
			name: "huge",
			worker: func(ctx context.Context, w gate.ReplyWriter) error {
				for range 2 {
					if err := w.Send(ctx, &gate.Reply{Kind: gate.ReplyHugeChunk, Body: [][]byte{make([]byte, 100)}}); err != nil {
						return err
					}
				}
				return w.Send(ctx, &gate.Reply{Kind: gate.ReplyHugeEnd, Body: [][]byte{{0}}})
			},
			check: func(t *testing.T, m map[string]sdktrace.ReadOnlySpan, err error) {
				checkFullTree(t, m, true)
				for _, k := range []string{kClient, kBroker, kWorker} {
					wantAttr(t, m[k], AttrHugeChunks, int64(2))
					wantAttr(t, m[k], AttrHugeCompressed, int64(200))
					wantAttr(t, m[k], AttrReplyKind, "huge")
				}
			},
		},
		{
			name: "remote error",
			worker: func(ctx context.Context, w gate.ReplyWriter) error {
				if err := w.Send(ctx, &gate.Reply{Kind: gate.ReplySingle, Err: boom, Body: [][]byte{[]byte("exc")}}); err != nil {
					return err
				}
				return boom
			},
			check: func(t *testing.T, m map[string]sdktrace.ReadOnlySpan, err error) {
				checkFullTree(t, m, true)
				for _, k := range []string{kClient, kBroker, kWorker, kDispatch} {
					wantAttr(t, m[k], "rpc.response.status_code", "INVALID_ARGUMENT")
					wantAttr(t, m[k], "error.type", "INVALID_ARGUMENT")
				}
				wantAttr(t, m[kWorker], AttrErrorClass, "TypeError")
				// INVALID_ARGUMENT is the caller's fault: an error on
				// CLIENT spans only.
				if m[kClient].Status().Code != codes.Error || m[kDispatch].Status().Code != codes.Error {
					t.Errorf("client span status = %v, want Error", m[kClient].Status())
				}
				if m[kWorker].Status().Code == codes.Error || m[kBroker].Status().Code == codes.Error {
					t.Errorf("server span status = %v, want Unset", m[kWorker].Status())
				}
			},
		},
		{
			name: "internal error",
			worker: func(ctx context.Context, w gate.ReplyWriter) error {
				return gate.Errorf(gate.Internal, "crash")
			},
			check: func(t *testing.T, m map[string]sdktrace.ReadOnlySpan, err error) {
				checkFullTree(t, m, true)
				for _, k := range []string{kClient, kBroker, kWorker} {
					if m[k].Status().Code != codes.Error {
						t.Errorf("%s status = %v, want Error", k, m[k].Status())
					}
					// The broker relays the worker's exception reply.
					kind := "none"
					if k == kBroker {
						kind = "single"
					}
					wantAttr(t, m[k], AttrReplyKind, kind)
				}
			},
		},
	}
	for _, tt := range tests {
		// Sampled spans are the same with WithParentBasedSampling.
		for _, pb := range []Option{nil, WithParentBasedSampling()} {
			name := tt.name
			if pb != nil {
				name += "/parent-based"
			}
			t.Run(name, func(t *testing.T) {
				sr, tp := newRecorder(t)
				f := &fakeHops{mw: Tracing(WithTracerProvider(tp), WithPropagators(testProp), pb), bo: BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp), pb), worker: tt.worker, queued: 250 * time.Millisecond}
				err := f.call(testCtx(t), "Svc", "echo")
				tt.check(t, spanTree(t, sr.Ended()), err)
				if len(sr.Started()) != len(sr.Ended()) {
					t.Errorf("%d spans started, %d ended", len(sr.Started()), len(sr.Ended()))
				}
			})
		}
	}
}

func TestTracingQueueTimeout(t *testing.T) {
	sr, tp := newRecorder(t)
	f := &fakeHops{mw: Tracing(WithTracerProvider(tp), WithPropagators(testProp)), bo: BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp)), brokerErr: gate.Errorf(gate.DeadlineExceeded, "queued too long")}
	if err := f.call(testCtx(t), "Svc", "echo"); gate.CodeOf(err) != gate.DeadlineExceeded {
		t.Fatalf("call = %v, want DEADLINE_EXCEEDED", err)
	}
	m := spanTree(t, sr.Ended())
	// No worker ever served Svc: the broker names the request "gaterpc".
	if len(m) != 3 || m[kClient] == nil || m[kBrokerOther] == nil || m[kQueue] == nil {
		t.Fatalf("spans = %v, want client, broker server, queue wait", keys(m))
	}
	wantChild(t, m[kBrokerOther], m[kClient])
	wantChild(t, m[kQueue], m[kBrokerOther])
	wantAttr(t, m[kQueue], AttrQueueExpired, true)
	for _, k := range []string{kClient, kBrokerOther} {
		wantAttr(t, m[k], "rpc.response.status_code", "DEADLINE_EXCEEDED")
		if m[k].Status().Code != codes.Error {
			t.Errorf("%s status = %v, want Error", k, m[k].Status())
		}
	}
}

func TestTracingNoService(t *testing.T) {
	sr, tp := newRecorder(t)
	f := &fakeHops{mw: Tracing(WithTracerProvider(tp), WithPropagators(testProp)), bo: BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp)), brokerErr: gate.Errorf(gate.Unavailable, "no service")}
	_ = f.call(testCtx(t), "Svc", "echo")
	m := spanTree(t, sr.Ended())
	if len(m) != 2 || m[kClient] == nil || m[kBrokerOther] == nil {
		t.Fatalf("spans = %v, want client and broker server only", keys(m))
	}
}

// A Python broker in the path forwards no trace context: the worker starts
// a new root, the client and worker spans are each whole.
func TestTracingPythonPeer(t *testing.T) {
	sr, tp := newRecorder(t)
	mw := Tracing(WithTracerProvider(tp), WithPropagators(testProp))
	req := &gate.Request{Service: "Svc", Method: "echo"}
	gatehook.SetRole(req, gate.RoleWorker)
	// ctx holds an unrelated local span: the worker must not adopt it.
	ctx, parent := tp.Tracer("x").Start(testCtx(t), "unrelated")
	defer parent.End()
	err := mw(gate.HandlerFunc(func(ctx context.Context, _ *gate.Request, _ gate.ReplyWriter) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("worker handler ctx has no span")
		}
		return nil
	})).ServeRPC(ctx, req, gate.ReplyWriterFunc(func(context.Context, *gate.Reply) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	if spans[0].Parent().IsValid() {
		t.Errorf("worker span without metadata has parent %v, want a new root", spans[0].Parent())
	}
	wantAttr(t, spans[0], AttrRemoteParent, true)
	if spans[0].SpanKind() != trace.SpanKindServer {
		t.Errorf("kind = %v", spans[0].SpanKind())
	}

	// Python broker dropping metadata between Go client and Go worker.
	sr2, tp2 := newRecorder(t)
	f := &fakeHops{mw: Tracing(WithTracerProvider(tp2), WithPropagators(testProp)), bo: BrokerObserver(nil, WithTracerProvider(tp2), WithPropagators(testProp)), dropMetadata: true,
		worker: func(ctx context.Context, w gate.ReplyWriter) error { return nil }}
	if err := f.call(testCtx(t), "Svc", "echo"); err != nil {
		t.Fatal(err)
	}
	m := spanTree(t, sr2.Ended())
	if m[kWorker] == nil || m[kWorker].Parent().IsValid() {
		t.Errorf("worker span should be a root: %v", keys(m))
	}
}

// TestTracingUnsampledParent: under a caller whose trace is not sampled,
// no hop records a span, and the trace id still reaches the worker (for
// its logs), through a span id of the broker's.
func TestTracingUnsampledParent(t *testing.T) {
	sr, tp := newRecorder(t)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(testCtx(t), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	var got trace.SpanContext
	f := &fakeHops{mw: Tracing(WithTracerProvider(tp), WithPropagators(testProp)), bo: BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp)), queued: time.Millisecond,
		worker: func(ctx context.Context, w gate.ReplyWriter) error {
			got = trace.SpanContextFromContext(ctx)
			return w.Send(ctx, &gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{[]byte("r")}})
		}}
	if err := f.call(ctx, "Svc", "echo"); err != nil {
		t.Fatal(err)
	}
	if n := len(sr.Started()); n != 0 {
		t.Errorf("%d spans recorded under an unsampled parent", n)
	}
	if got.TraceID() != tid || got.IsSampled() || !got.SpanID().IsValid() || got.SpanID() == sid {
		t.Errorf("worker span context = %v %v sampled=%v, want trace %v, a new span id, not sampled",
			got.TraceID(), got.SpanID(), got.IsSampled(), tid)
	}
	tp2 := f.workerMD["traceparent"]
	if want := "00-" + tid.String() + "-"; len(tp2) != 55 || tp2[:36] != want || tp2[52:] != "-00" || tp2[36:52] == sid.String() {
		t.Errorf("worker's traceparent = %q, want %s<broker's span id>-00", tp2, want)
	}
}

// TestTracingUnsampledParentBased: with WithParentBasedSampling, under a
// caller whose trace is not sampled no hop starts an SDK span; the broker
// leaves the request alone (the worker gets the client's context), the
// client and the worker carry the trace id with span ids of their own,
// not sampled, and baggage still reaches the worker.
func TestTracingUnsampledParentBased(t *testing.T) {
	sr, tp := newRecorder(t)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=x")
	ctx := trace.ContextWithSpanContext(testCtx(t), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceState: ts}))
	bg, _ := baggage.Parse("tenant=acme")
	ctx = baggage.ContextWithBaggage(ctx, bg)
	opts := []Option{WithTracerProvider(tp), WithPropagators(testProp), WithParentBasedSampling()}
	var got trace.SpanContext
	f := &fakeHops{mw: Tracing(opts...), bo: BrokerObserver(nil, opts...),
		worker: func(ctx context.Context, w gate.ReplyWriter) error {
			got = trace.SpanContextFromContext(ctx)
			if v := baggage.FromContext(ctx).Member("tenant").Value(); v != "acme" {
				t.Errorf("worker baggage tenant = %q, want acme", v)
			}
			return w.Send(ctx, &gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{[]byte("r")}})
		}}
	if err := f.call(ctx, "Svc", "echo"); err != nil {
		t.Fatal(err)
	}
	if n := len(sr.Started()); n != 0 {
		t.Errorf("%d spans recorded under an unsampled parent", n)
	}
	wctx := testProp.Extract(context.Background(), metadataCarrier(f.workerMD))
	client := trace.SpanContextFromContext(wctx)
	if client.TraceID() != tid || client.IsSampled() || !client.SpanID().IsValid() || client.SpanID() == sid || client.TraceState().String() != "vendor=x" {
		t.Errorf("worker's traceparent %q (tracestate %q): want trace %v, the client's own span id, not sampled, the caller's trace state",
			f.workerMD["traceparent"], f.workerMD["tracestate"], tid)
	}
	if got.TraceID() != tid || got.IsSampled() || !got.SpanID().IsValid() || got.SpanID() == sid || got.SpanID() == client.SpanID() || got.IsRemote() {
		t.Errorf("worker span context = %v %v sampled=%v remote=%v, want trace %v, a new local span id, not sampled",
			got.TraceID(), got.SpanID(), got.IsSampled(), got.IsRemote(), tid)
	}
	// A root call is still the sampler's to decide, and sampled here.
	if err := f.call(baggage.ContextWithBaggage(testCtx(t), bg), "Svc", "echo"); err != nil {
		t.Fatal(err)
	}
	checkFullTree(t, spanTree(t, sr.Ended()), false)
}

// TestUnsampledTraceparent: the broker's flag check accepts exactly the
// headers propagation.TraceContext accepts, and only unsampled ones.
func TestUnsampledTraceparent(t *testing.T) {
	const (
		tid = "4bf92f3577b34da6a3ce929d0e0e4736"
		sid = "00f067aa0ba902b7"
	)
	for _, h := range []string{
		"00-" + tid + "-" + sid + "-00",
		"00-" + tid + "-" + sid + "-01",
		"00-" + tid + "-" + sid + "-02",
		"00-" + tid + "-" + sid + "-03",
		"00-" + tid + "-" + sid + "-04",
		"00-" + tid + "-" + sid + "-0",
		"00-" + tid + "-" + sid + "-000",
		"00-" + tid + "-" + sid + "-00-x",
		"01-" + tid + "-" + sid + "-00",
		"01-" + tid + "-" + sid + "-00-extra",
		"01-" + tid + "-" + sid + "-00x",
		"fe-" + tid + "-" + sid + "-00",
		"ff-" + tid + "-" + sid + "-00",
		"0g-" + tid + "-" + sid + "-00",
		"00-00000000000000000000000000000000-" + sid + "-00",
		"00-" + tid + "-0000000000000000-00",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + sid + "-00",
		"00-" + tid + "-" + sid + "-0A",
		"00-" + tid + "-" + sid + "-ff",
		"00_" + tid + "-" + sid + "-00",
		"00-" + tid + "x" + sid + "-00",
		"00-" + tid[:31] + "-" + sid + "0-00",
		"",
		"garbage",
	} {
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), metadataCarrier{"traceparent": h}))
		want := sc.IsValid() && !sc.IsSampled()
		if got := unsampledTraceparent(h); got != want {
			t.Errorf("unsampledTraceparent(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestTracingUnknownMethodAndBaggage(t *testing.T) {
	sr, tp := newRecorder(t)
	f := &fakeHops{mw: Tracing(WithTracerProvider(tp), WithPropagators(testProp), WithMethods("Svc/echo")), bo: BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp), WithMethods("Svc/echo")),
		worker: func(ctx context.Context, w gate.ReplyWriter) error {
			if got := baggage.FromContext(ctx).Member("tenant").Value(); got != "acme" {
				t.Errorf("worker baggage tenant = %q, want acme", got)
			}
			return nil
		}}
	b, _ := baggage.Parse("tenant=acme")
	ctx := baggage.ContextWithBaggage(testCtx(t), b)
	if err := f.call(ctx, "Svc", "evil"); err != nil {
		t.Fatal(err)
	}
	for _, s := range sr.Ended() {
		if s.Name() == "Svc/evil" {
			t.Errorf("span named after an unknown method")
		}
		if s.SpanKind() == trace.SpanKindServer {
			wantAttr(t, s, "rpc.method", OtherMethod)
			wantAttr(t, s, "rpc.method_original", "Svc/evil")
		}
	}
	if f.workerMD["baggage"] != "tenant=acme" || f.workerMD["traceparent"] == "" {
		t.Errorf("worker metadata = %v, want traceparent and baggage", f.workerMD)
	}
}

func TestMetadataCarrier(t *testing.T) {
	c := metadataCarrier{}
	c.Set("traceparent", "x")
	c.Set("baggage", "y")
	if c.Get("traceparent") != "x" || c.Get("missing") != "" {
		t.Errorf("Get: %v", c)
	}
	if ks := c.Keys(); len(ks) != 2 || ks[0] != "baggage" {
		t.Errorf("Keys() = %v", ks)
	}
}

func BenchmarkTracingFakeHops(b *testing.B) {
	worker := func(ctx context.Context, w gate.ReplyWriter) error {
		return w.Send(ctx, &gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{[]byte("hi")}})
	}
	b.Run("off", func(b *testing.B) {
		f := &fakeHops{mw: gate.Chain(), worker: worker}
		b.ReportAllocs()
		for b.Loop() {
			f.sink = f.sink[:0]
			_ = f.call(context.Background(), "Svc", "echo")
		}
	})
	b.Run("sampled", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider() // no exporter: spans are built, then dropped
		defer tp.Shutdown(context.Background())
		f := &fakeHops{mw: Tracing(WithTracerProvider(tp), WithPropagators(testProp)), bo: BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp)), worker: worker}
		b.ReportAllocs()
		for b.Loop() {
			f.sink = f.sink[:0]
			_ = f.call(context.Background(), "Svc", "echo")
		}
	})
}

func TestClientSpanServerAddress(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		want     map[attribute.Key]any
	}{
		{"tcp://127.0.0.1:5555", map[attribute.Key]any{"server.address": "127.0.0.1", "server.port": int64(5555)}},
		{"tcp://[::1]:6000", map[attribute.Key]any{"server.address": "::1", "server.port": int64(6000)}},
		{"ipc:///run/gate/front", map[attribute.Key]any{"server.address": "/run/gate/front", "network.transport": "unix"}},
		{"inproc://front", nil},
	} {
		t.Run(tt.endpoint, func(t *testing.T) {
			sr, tp := newRecorder(t)
			mw := Tracing(WithTracerProvider(tp), WithPropagators(testProp), WithServerAddress(tt.endpoint))
			req := &gate.Request{Service: "Svc", Method: "echo"}
			gatehook.SetRole(req, gate.RoleClient)
			h := mw(gate.HandlerFunc(func(context.Context, *gate.Request, gate.ReplyWriter) error { return nil }))
			if err := h.ServeRPC(testCtx(t), req, nil); err != nil {
				t.Fatal(err)
			}
			spans := sr.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans", len(spans))
			}
			for k, want := range tt.want {
				wantAttr(t, spans[0], k, want)
			}
			if _, ok := attrOf(spans[0], "server.address"); ok != (tt.want != nil) {
				t.Errorf("server.address present = %v, want %v", ok, tt.want != nil)
			}
		})
	}
}

// TestTracingNoopProvider: with the no-op provider a hop starts no span
// and keeps what the no-op tracer would give the handler: the client
// injects the caller's span context and baggage (nothing without them),
// the worker's handler sees the remote context and baggage from the
// metadata, and a caller's recording span reaches the handler as a
// non-recording span with its span context.
func TestTracingNoopProvider(t *testing.T) {
	mw := Tracing(WithTracerProvider(noop.NewTracerProvider()), WithPropagators(testProp))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	bg, _ := baggage.Parse("tenant=acme")
	var seen context.Context
	h := mw(gate.HandlerFunc(func(ctx context.Context, _ *gate.Request, _ gate.ReplyWriter) error {
		seen = ctx
		return nil
	}))
	serve := func(ctx context.Context, role gate.Role, md map[string]string) *gate.Request {
		t.Helper()
		req := &gate.Request{Service: "Svc", Method: "echo", Metadata: md}
		gatehook.SetRole(req, role)
		if err := h.ServeRPC(ctx, req, gate.ReplyWriterFunc(func(context.Context, *gate.Reply) error { return nil })); err != nil {
			t.Fatal(err)
		}
		return req
	}

	req := serve(testCtx(t), gate.RoleClient, map[string]string{})
	if len(req.Metadata) != 0 {
		t.Errorf("client without a parent injected %v", req.Metadata)
	}
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(testCtx(t), parent), bg)
	req = serve(ctx, gate.RoleClient, map[string]string{})
	if want := "00-" + tid.String() + "-" + sid.String() + "-01"; req.Metadata["traceparent"] != want || req.Metadata["baggage"] != "tenant=acme" {
		t.Errorf("client metadata = %v, want traceparent %s and the baggage", req.Metadata, want)
	}
	if got := trace.SpanContextFromContext(seen); !got.Equal(parent) {
		t.Errorf("client handler's span context = %v, want the caller's", got)
	}

	serve(testCtx(t), gate.RoleWorker, req.Metadata)
	got := trace.SpanContextFromContext(seen)
	if got.TraceID() != tid || got.SpanID() != sid || !got.IsRemote() || !got.IsSampled() {
		t.Errorf("worker handler's span context = %v, want the remote parent", got)
	}
	if v := baggage.FromContext(seen).Member("tenant").Value(); v != "acme" {
		t.Errorf("worker baggage tenant = %q, want acme", v)
	}
	if trace.SpanFromContext(seen).IsRecording() {
		t.Error("worker handler's span is recording")
	}

	_, tp := newRecorder(t)
	rctx, span := tp.Tracer("test").Start(testCtx(t), "caller")
	defer span.End()
	req = serve(rctx, gate.RoleClient, map[string]string{})
	if s := trace.SpanFromContext(seen); s.IsRecording() || !s.SpanContext().Equal(span.SpanContext()) {
		t.Errorf("under a recording caller span the handler's span is recording=%v with %v, want non-recording with %v",
			s.IsRecording(), s.SpanContext(), span.SpanContext())
	}
	if req.Metadata["traceparent"] == "" {
		t.Error("client under a recording caller span injected no traceparent")
	}
}

// TestWorkerUnsampledW3C: the worker's shortcut for an unsampled W3C
// parent gives the handler the span context the general path gives it
// (extraction, then a child with a new span id), and is taken only when
// the traceparent is all there is to extract.
func TestWorkerUnsampledW3C(t *testing.T) {
	_, tp := newRecorder(t)
	tr := newTracing([]Option{WithTracerProvider(tp), WithPropagators(testProp), WithParentBasedSampling()})
	for _, h := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future",
		"00-0000000000000000000000000000000a-00f067aa0ba902b7-00",
	} {
		md := map[string]string{"traceparent": h, "gate.flow": "x"}
		got, ok := tr.unsampledW3C(md)
		if !ok || got != h {
			t.Errorf("%s: shortcut not taken", h)
			continue
		}
		fast := trace.SpanContextFromContext(unsampledChildW3C(context.Background(), h))
		parent := trace.SpanContextFromContext(testProp.Extract(context.Background(), metadataCarrier(md)))
		slow := trace.SpanContextFromContext(unsampledChild(context.Background(), parent))
		if fast.TraceID() != slow.TraceID() || fast.TraceFlags() != slow.TraceFlags() ||
			fast.TraceState().String() != slow.TraceState().String() || fast.IsRemote() != slow.IsRemote() ||
			!fast.SpanID().IsValid() || fast.SpanID() == parent.SpanID() {
			t.Errorf("%s: shortcut gives %+v, the general path %+v", h, fast, slow)
		}
	}
	const unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	for _, md := range []map[string]string{
		{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"traceparent": unsampled, "tracestate": "vendor=x"},
		{"traceparent": unsampled, "baggage": "tenant=acme"},
		{"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-00"},
		nil,
	} {
		if _, ok := tr.unsampledW3C(md); ok {
			t.Errorf("%v: shortcut taken", md)
		}
	}
	b3 := newTracing([]Option{WithTracerProvider(tp), WithPropagators(propagation.NewCompositeTextMapPropagator(testProp, fieldsProp{"b3"})), WithParentBasedSampling()})
	if _, ok := b3.unsampledW3C(map[string]string{"traceparent": unsampled}); ok {
		t.Error("shortcut taken with a propagator that reads other keys")
	}
	plain := newTracing([]Option{WithTracerProvider(tp), WithPropagators(testProp)})
	if _, ok := plain.unsampledW3C(map[string]string{"traceparent": unsampled}); ok {
		t.Error("shortcut taken without WithParentBasedSampling")
	}
}

// fieldsProp is a propagator that only declares its fields.
type fieldsProp []string

func (fieldsProp) Inject(context.Context, propagation.TextMapCarrier) {}
func (fieldsProp) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (p fieldsProp) Fields() []string { return p }
