package broker

import (
	"maps"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

// Request outcomes passed to RequestObserver.Finish and carried by
// EventFinished. They form a closed set fit for metric labels.
const (
	OutcomeOK          = "ok"            // final reply relayed, no exception marker seen
	OutcomeError       = "error"         // final reply carried a remote exception
	OutcomeExpired     = "expired"       // waited too long for a worker (BusyWorkerError)
	OutcomeTimeout     = "timeout"       // caller budget ran out while queued (TimeoutError)
	OutcomeFull        = "rejected_full" // queue full, client too slow or flow control violated (BusyWorkerError)
	OutcomeNoService   = "no_service"    // unknown service or no live worker (ServiceUnAvailableError)
	OutcomeCancelled   = "cancelled"     // cancelled by the client (Gate.cancel), or the client left
	OutcomeWorkerLost  = "worker_lost"   // worker died, expired or left mid-request (WorkerLostError)
	OutcomeShutdown    = "shutdown"      // refused or dropped because the broker is shutting down
	OutcomeRefused     = "refused"       // refused by the admission filter (WithAdmission)
	OutcomeInternalErr = "internal"      // broker-internal failure (e.g. the socket refused the send)
)

// Worker-gone reasons carried by EventWorkerGone; they are also the keys
// of Stats.Expirations.
const (
	GoneHeartbeat      = "heartbeat"       // silent longer than heartbeat × liveness
	GoneDisconnect     = "disconnect"      // the worker sent DISCONNECT
	GoneDuplicateReady = "duplicate_ready" // READY from a registered id: banned
	GoneProtocol       = "protocol"        // banned for a protocol violation
	GoneShutdown       = "shutdown"        // the broker shut down
)

// An Observer watches the broker from its socket loop. It is the broker's
// one extension seam for tracing, metrics and logging: every call is
// synchronous, on the loop, in the order things happen, with no goroutine
// and no hand-off per request.
//
// Observe follows one worker-service request (internal Gate calls are
// excluded) from arrival to finish. An Observer that also implements
// EventObserver sees the broker-level events as well (see Event): metrics
// need nothing else, and their Observe returns nil.
//
// Observers must be cheap and must not block or call back into the
// Broker: every request waits while one runs. Ending a span is fine when
// the tracer provider batches its exports (as telemetry/setup's does); a
// synchronous exporter is not.
type Observer interface {
	// Observe is called once when a request arrives (at arrived), before
	// the admission filter, and returns what sees the rest of it (nil:
	// nothing). req carries the request's identity (ID, Peer), its
	// metadata and body; it belongs to the broker: read it during the
	// call, keep none of it (Metadata, Body and the strings included)
	// afterwards.
	Observe(req *gate.Request, arrived time.Time) RequestObserver
}

// EventObserver is implemented by an Observer that wants the broker-level
// events. Event runs on the loop like the rest of the Observer; ev and
// its strings are valid during the call only.
type EventObserver interface {
	Event(ev *Event)
}

// RequestObserver sees one request, on the broker's socket loop.
type RequestObserver interface {
	// Dispatch is called when the request is about to be sent to a
	// worker. d.Metadata is a copy the observer may change (and keep):
	// the worker receives it (tracing injects its dispatch span's
	// context); d itself is valid during the call only. A
	// request re-sent after its worker was lost before the send sees a
	// second Dispatch.
	Dispatch(d *Dispatch)
	// Reply is called for every worker reply relayed to the client;
	// rep.Body is valid during the call only.
	Reply(rep *gate.Reply)
	// Finish is called once when the request ends (at end), with one of
	// the Outcome* values. err is the broker-generated failure (a
	// *gate.Error) when the broker answered the client itself, nil
	// otherwise; a remote exception is only seen in the final Reply.
	Finish(end time.Time, outcome string, err error)
}

// Dispatch describes the sending of a request to a worker.
type Dispatch struct {
	Service  string
	Enqueued time.Time // when the request arrived at the broker
	Assigned time.Time // when a worker with free capacity was chosen
	// Metadata is sent to the worker inside the request id. The observer
	// may replace entries (tracing injects the dispatch span's context).
	Metadata map[string]string
	// Worker is the routing id of the worker chosen. It belongs to the
	// broker: copy it to keep it.
	Worker []byte
}

// EventKind names a broker-level event.
type EventKind uint8

// The broker-level events, with the Event fields each one sets (Kind and
// Time are always set).
const (
	// EventRequest: a valid client request arrived, internal Gate calls
	// included. Service.
	EventRequest EventKind = iota + 1
	// EventQueued: a request has to wait for a worker. Service.
	EventQueued
	// EventDispatched: a request was sent to a worker. Service, Wait (the
	// time since it arrived).
	EventDispatched
	// EventReply: a worker reply was relayed to a client. Service, Reply
	// (its kind), Size (its body size in bytes).
	EventReply
	// EventFinished: a worker-service request ended. Service, Outcome
	// (an Outcome* value), Wait (the time since it arrived).
	EventFinished
	// EventWorkerReady: a worker registered. Service.
	EventWorkerReady
	// EventWorkerGone: a registered worker was forgotten. Service, Reason
	// (a Gone* value).
	EventWorkerGone
	// EventHeartbeatSent: a HEARTBEAT went to a worker.
	EventHeartbeatSent
	// EventHeartbeatReceived: a HEARTBEAT came from a registered worker.
	EventHeartbeatReceived
	// EventDropped: an inbound message was dropped, or an outbound one
	// could not be delivered, as counted in Stats.Drops. Socket
	// ("frontend" or "backend"), Reason.
	EventDropped
)

var eventNames = [...]string{"", "request", "queued", "dispatched", "reply", "finished", "worker_ready",
	"worker_gone", "heartbeat_sent", "heartbeat_received", "dropped"}

// String returns the event's name, e.g. "worker_gone".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k > 0 {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one broker-level event. Service names come from the wire
// (unbounded): map them to a closed set before using them as metric
// labels.
type Event struct {
	Kind    EventKind
	Time    time.Time // the loop's clock when it happened
	Service string
	Outcome string         // EventFinished
	Reason  string         // EventWorkerGone, EventDropped
	Socket  string         // EventDropped
	Wait    time.Duration  // EventDispatched, EventFinished: since arrival
	Reply   gate.ReplyKind // EventReply
	Size    int            // EventReply: body bytes
}

// WithObserver installs observers (see Observer); they are called in the
// order given. A later call replaces earlier observers; nil entries are
// skipped.
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

func (m multiObserver) Dispatch(d *Dispatch) {
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

// initObservers splits the installed observers by what they watch.
func (l *loop) initObservers() {
	for _, o := range l.opts.observers {
		if eo, ok := o.(EventObserver); ok {
			l.evobs = append(l.evobs, eo)
		}
	}
}

// emit shows l.ev to the event observers; call it only when there are
// some (len(l.evobs) > 0), after filling l.ev.
func (l *loop) emit() {
	for _, o := range l.evobs {
		o.Event(&l.ev)
	}
	l.ev = Event{}
}

// event emits a broker-level event with its service.
func (l *loop) event(kind EventKind, service string) {
	if len(l.evobs) == 0 {
		return
	}
	l.ev = Event{Kind: kind, Time: l.now, Service: service}
	l.emit()
}

// request fills l.greq, the scratch gate.Request observers and the
// admission filter see, from r.
func (l *loop) request(r *request) *gate.Request {
	l.greq = gate.Request{
		Service:  r.svcName,
		Method:   l.method(r.body),
		ID:       r.base,
		Metadata: r.meta.MD,
		Deadline: r.budgetEnd,
		Peer:     r.client,
		Body:     r.body,
	}
	gatehook.SetRole(&l.greq, gate.RoleBroker)
	return &l.greq
}

// method is methodName, reusing the last name decoded when it is the
// same, so that a steady stream of calls to one method allocates nothing.
func (l *loop) method(body [][]byte) string {
	if len(body) > 0 && string(body[0]) == l.lastMethodRaw {
		return l.lastMethod
	}
	m := methodName(body)
	if len(body) > 0 {
		l.lastMethodRaw, l.lastMethod = string(body[0]), m
	}
	return m
}

// arrive shows a new worker-service request to the observers and the
// admission filter; it reports false when the filter refused it (r is
// then finished).
func (l *loop) arrive(r *request) bool {
	obs, admit := l.opts.observers, l.opts.admission
	if len(obs) == 0 && admit == nil {
		return true
	}
	req := l.request(r)
	switch {
	case len(obs) == 1:
		r.obs = obs[0].Observe(req, r.arrived)
	case len(obs) > 1:
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
	if admit == nil {
		l.greq = gate.Request{}
		return true
	}
	err := admit(req)
	l.greq = gate.Request{}
	if err == nil {
		return true
	}
	l.refuse(r, err)
	return false
}

// observeDispatch shows the dispatch of r to its observer and returns the
// metadata to send (a copy of md the observer may have changed).
func (l *loop) observeDispatch(r *request, md map[string]string) map[string]string {
	d := &l.disp // reused: the observer keeps none of it
	*d = Dispatch{Service: r.svcName, Enqueued: r.arrived, Assigned: l.now, Metadata: maps.Clone(md)}
	if r.worker != nil {
		d.Worker = r.worker.id
	}
	if d.Metadata == nil {
		d.Metadata = make(map[string]string, 2)
	}
	r.obs.Dispatch(d)
	md = d.Metadata
	*d = Dispatch{}
	return md
}

// observeFinish ends r's observation.
func (l *loop) observeFinish(r *request, outcome string, err error) {
	o := r.obs
	r.obs = nil
	o.Finish(l.now, outcome, err)
}
