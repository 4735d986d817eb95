package broker

import (
	"maps"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

// An Observer watches every worker-service request (internal Gate calls
// excluded) from the broker's socket loop. It is the cheap way to trace
// and log the broker hop: where broker middleware (WithMiddleware) costs a
// goroutine and two loop hand-offs per request, an observer is called
// synchronously, in the order of the request's life, on the loop itself.
//
// Like Hooks, observers must be cheap and must not block or call back into
// the Broker: every request waits while one runs. Ending a span is fine
// when the tracer provider batches its exports (as telemetry/setup's does);
// a synchronous exporter is not.
type Observer interface {
	// Observe is called once when a request arrives (at arrived), before
	// any middleware, and returns what sees the rest of it (nil: nothing).
	// req belongs to the broker: read it during the call, keep none of
	// it (Metadata and Body included) afterwards.
	Observe(req *gate.Request, arrived time.Time) RequestObserver
}

// RequestObserver sees one request, on the broker's socket loop.
type RequestObserver interface {
	// Dispatch is called when the request is about to be sent to a worker,
	// after the middleware's dispatch hook, if any. d.Metadata is a copy
	// the observer may change: the worker receives it (tracing injects
	// its dispatch span's context). A request re-sent after its worker
	// was lost before the send sees a second Dispatch.
	Dispatch(d *gate.Dispatch)
	// Reply is called for every worker reply relayed to the client;
	// rep.Body is valid during the call only.
	Reply(rep *gate.Reply)
	// Finish is called once when the request ends (at end), with one of
	// the Outcome* values. err is the broker-generated failure (a
	// *gate.Error) when the broker answered the client itself, nil
	// otherwise; a remote exception is only seen in the final Reply.
	Finish(end time.Time, outcome string, err error)
}

// WithObserver installs observers of every request (see Observer); they
// are called in the order given. A later call replaces earlier observers.
func WithObserver(obs ...Observer) Option {
	return optionFunc(func(o *options) error {
		o.observers = nil
		for _, ob := range obs {
			if ob != nil {
				o.observers = append(o.observers, ob)
			}
		}
		return nil
	})
}

// multiObserver fans one request out to several RequestObservers.
type multiObserver []RequestObserver

func (m multiObserver) Dispatch(d *gate.Dispatch) {
	for _, o := range m {
		o.Dispatch(d)
	}
}

func (m multiObserver) Reply(rep *gate.Reply) {
	for _, o := range m {
		o.Reply(rep)
	}
}

func (m multiObserver) Finish(end time.Time, outcome string, err error) {
	for _, o := range m {
		o.Finish(end, outcome, err)
	}
}

// ---- loop side ----

// observe starts observing r, if observers are installed.
func (l *loop) observe(r *request) {
	obs := l.opts.observers
	if len(obs) == 0 {
		return
	}
	req := &gate.Request{
		Service:  r.svcName,
		Method:   methodName(r.body),
		ID:       r.base,
		Metadata: r.meta.MD,
		Deadline: r.budgetEnd,
		Peer:     r.client,
		Body:     r.body,
	}
	gatehook.SetRole(req, gate.RoleBroker)
	if len(obs) == 1 {
		r.obs = obs[0].Observe(req, r.arrived)
		return
	}
	var m multiObserver
	for _, o := range obs {
		if ro := o.Observe(req, r.arrived); ro != nil {
			m = append(m, ro)
		}
	}
	switch len(m) {
	case 0:
	case 1:
		r.obs = m[0]
	default:
		r.obs = m
	}
}

// observeDispatch shows the dispatch of r to its observer and returns the
// metadata to send (a copy of md the observer may have changed).
func (l *loop) observeDispatch(r *request, md map[string]string) map[string]string {
	d := gate.Dispatch{Service: r.svcName, Enqueued: r.arrived, Assigned: l.now, Metadata: maps.Clone(md)}
	if r.worker != nil {
		d.Worker = r.worker.id
	}
	if d.Metadata == nil {
		d.Metadata = make(map[string]string, 2)
	}
	r.obs.Dispatch(&d)
	return d.Metadata
}

// observeFinish ends r's observation.
func (l *loop) observeFinish(r *request, outcome string, err error) {
	o := r.obs
	r.obs = nil
	o.Finish(l.now, outcome, err)
}
