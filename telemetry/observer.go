package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// BrokerObserver returns a broker.Observer (install it with
// broker.WithObserver) that traces the broker hop: a SERVER span
// "Service/method", child of the client's context or a new root marked
// gaterpc.parent.missing, and per dispatch a CLIENT "dispatch" span whose
// context goes to the worker, preceded by an INTERNAL "queue wait" span
// when the request waited for a worker. When logger is not nil and
// enabled at Debug, it also logs one record per request like Logging,
// carrying the SERVER span's trace_id and span_id.
//
// It runs on the broker's socket loop, with no goroutine and no hand-off
// per request (telemetry/setup and gate-broker install it beside
// BrokerMetrics). With logging off, it leaves to
// the broker's plain path every request whose SERVER span would not be
// recorded (a no-op tracer provider, or a trace the sampler drops): the
// worker then gets the client's trace context as it came, and the trace
// id still reaches the worker's logs.
//
// Span names and rpc.method carry the names of services that have had a
// request dispatched to a worker (at most WithMaxServices of them): a
// request for a service no worker ever served is named "gaterpc" with
// rpc.method="_OTHER" and rpc.method_original, so that calls to junk
// names cannot use up the bound before a real service registers. A
// request that waits in the queue for the first worker of its service is
// renamed when it is dispatched.
//
// Options: WithTracerProvider, WithPropagators, WithMethods,
// WithMaxMethods, WithMaxServices, WithParentBasedSampling.
func BrokerObserver(logger *slog.Logger, opts ...Option) broker.Observer {
	c := newConfig(opts)
	o := &brokerObserver{log: logger, methods: newLabelSet(c.methods, c.maxMethods), services: newLabelSet(nil, c.maxServices)}
	if _, off := c.tracerProvider().(noop.TracerProvider); !off {
		o.t = newTracing(opts)
	}
	return o
}

type brokerObserver struct {
	t        *tracing // nil: not tracing
	log      *slog.Logger
	methods  *labelSet
	services *labelSet // services dispatched to a worker at least once
}

// Observe implements broker.Observer.
func (o *brokerObserver) Observe(req *gate.Request, arrived time.Time) broker.RequestObserver {
	var logger *slog.Logger
	if o.log != nil && o.log.Enabled(context.Background(), slog.LevelDebug) {
		logger = o.log
	}
	if o.t == nil && logger == nil {
		return nil
	}
	if logger == nil && o.t.parentBased && unsampledTraceparent(req.Metadata["traceparent"]) {
		// The client's trace is not sampled, so this hop's is not
		// (WithParentBasedSampling): the plain path, without extracting
		// the context or starting a span.
		return nil
	}
	var (
		sctx   context.Context
		span   trace.Span
		method attribute.KeyValue
	)
	known := o.services.peek(req.Service) != OtherMethod
	if o.t != nil {
		var (
			name  string
			attrs trace.SpanStartOption
		)
		if known {
			name, attrs, method = o.t.describe(req)
		} else {
			name, attrs, method = describeOther(req.Info())
		}
		sctx, span, method = o.t.startServerAs(context.Background(), req, arrived, name, attrs, method)
		if !span.IsRecording() && logger == nil {
			// The trace is not sampled here: nothing to record, so the
			// request takes the broker's plain path, and the worker gets
			// the client's trace context (not sampled) as it came.
			span.End()
			return nil
		}
	}
	r := &observedRequest{o: o, rc: replyCounter{wireExc: true}, arrived: arrived}
	if !known {
		// Kept (copied: req is the broker's) to name the request if it
		// is dispatched.
		r.info = gate.Info{Service: strings.Clone(req.Service), Method: strings.Clone(req.Method), Role: gate.RoleBroker}
	}
	if o.t != nil {
		o.t.setBroker(sctx, &r.bc, span, method, req, arrived)
		r.traced = true
	}
	if logger != nil {
		r.log = logger
		r.method = OtherMethod
		if known {
			r.method, _ = o.methods.method(req.Info())
		}
		r.id = bytes.Clone(req.ID)
	}
	return r
}

// observedRequest is one request seen by a brokerObserver.
type observedRequest struct {
	o       *brokerObserver
	info    gate.Info // set while the service is not known to have workers
	bc      brokerCall
	traced  bool
	rc      replyCounter
	arrived time.Time

	log    *slog.Logger // nil: not logged
	method string
	id     []byte
}

// Dispatch implements broker.RequestObserver.
func (r *observedRequest) Dispatch(d *broker.Dispatch) {
	if r.info.Service != "" {
		r.name()
	}
	if r.traced {
		r.bc.dispatch(d)
	}
}

// name admits the request's service, now that a worker serves it, and
// gives the request its method's name if it is (or becomes) known.
func (r *observedRequest) name() {
	info := r.info
	r.info = gate.Info{}
	if r.o.services.lookup(info.Service) == OtherMethod {
		return
	}
	methods := r.o.methods
	if r.traced {
		methods = r.bc.t.methods
	}
	m, known := methods.method(info)
	if !known {
		return
	}
	if r.log != nil {
		r.method, _ = r.o.methods.method(info)
	}
	if r.traced {
		r.bc.method = keyMethod.String(m)
		r.bc.span.SetName(m)
		r.bc.span.SetAttributes(r.bc.method)
	}
}

// Reply implements broker.RequestObserver.
func (r *observedRequest) Reply(rep *gate.Reply) { r.rc.count(rep) }

// Finish implements broker.RequestObserver.
func (r *observedRequest) Finish(end time.Time, outcome string, err error) {
	if err == nil && outcome == broker.OutcomeCancelled {
		err = errCancelled
	}
	ctx := context.Background()
	if r.traced {
		r.bc.end(&r.rc, err, end)
		ctx = r.bc.sctx
	}
	if r.log != nil {
		logCall(ctx, r.log, r.method, gate.RoleBroker, r.id, end.Sub(r.arrived), &r.rc, err)
	}
}

// errCancelled is the status of a request the client cancelled (or left).
var errCancelled = gate.Errorf(gate.Canceled, "cancelled by the client")
