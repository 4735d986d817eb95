package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// BrokerObserver returns a broker.Observer (install it with
// broker.WithObserver) that traces the broker hop exactly like Tracing at
// the broker role: a SERVER span "Service/method", child of the client's
// context or a new root marked gaterpc.parent.missing, and per dispatch an
// INTERNAL "queue wait" span and a CLIENT "dispatch" span whose context
// goes to the worker. When logger is not nil and enabled at Debug, it also
// logs one record per request like Logging, carrying the SERVER span's
// trace_id and span_id.
//
// It runs on the broker's socket loop, with no goroutine and no hand-off
// per request: use it rather than Tracing and Logging as broker middleware
// (telemetry/setup and gate-broker do). With logging off, it leaves to
// the broker's plain path every request whose SERVER span would not be
// recorded (a no-op tracer provider, or a trace the sampler drops): the
// worker then gets the client's trace context as it came, and the trace
// id still reaches the worker's logs.
//
// Options: WithTracerProvider, WithPropagators, WithMethods,
// WithMaxMethods.
func BrokerObserver(logger *slog.Logger, opts ...Option) broker.Observer {
	c := newConfig(opts)
	o := &brokerObserver{log: logger, methods: newLabelSet(c.methods, c.maxMethods)}
	if _, off := c.tracerProvider().(noop.TracerProvider); !off {
		o.t = newTracing(opts)
	}
	return o
}

type brokerObserver struct {
	t       *tracing // nil: not tracing
	log     *slog.Logger
	methods *labelSet
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
	var (
		sctx   context.Context
		span   trace.Span
		method attribute.KeyValue
	)
	if o.t != nil {
		sctx, span, method = o.t.startServer(context.Background(), req, arrived)
		if !span.IsRecording() && logger == nil {
			// The trace is not sampled here: nothing to record, so the
			// request takes the broker's plain path, and the worker gets
			// the client's trace context (not sampled) as it came.
			span.End()
			return nil
		}
	}
	r := &observedRequest{rc: replyCounter{wireExc: true}, arrived: arrived}
	if o.t != nil {
		o.t.setBroker(sctx, &r.bc, span, method, req, arrived)
		r.traced = true
	}
	if logger != nil {
		r.log = logger
		r.method, _ = o.methods.method(req.Info())
		r.id = bytes.Clone(req.ID)
	}
	return r
}

// observedRequest is one request seen by a brokerObserver.
type observedRequest struct {
	bc      brokerCall
	traced  bool
	rc      replyCounter
	arrived time.Time

	log    *slog.Logger // nil: not logged
	method string
	id     []byte
}

// Dispatch implements broker.RequestObserver.
func (r *observedRequest) Dispatch(d *gate.Dispatch) {
	if r.traced {
		r.bc.dispatch(d)
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
