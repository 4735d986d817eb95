package broker

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
	"github.com/gaterpc/gate/internal/wire"
)

// maxBufferedReplies bounds the reply messages waiting for one request's
// middleware goroutine. Beyond it the request fails (the loop never
// blocks).
const maxBufferedReplies = 1024

type evKind uint8

const (
	evAssigned evKind = iota + 1 // a worker was chosen: run the dispatch hook, then send
	evReply                      // a reply the loop relayed: show it to the ReplyWriter
	evDone                       // finished by the broker (any body already relayed): return err
)

type mwEvent struct {
	kind      evKind
	dispatch  gate.Dispatch
	replyKind wire.ReplyKind
	body      [][]byte
	err       error
}

// mwReq is the loop→goroutine channel of one request: an unbounded-by-
// construction (but capped) queue, so the loop's push never blocks.
type mwReq struct {
	mu  sync.Mutex
	q   []mwEvent
	sig chan struct{}
}

func (m *mwReq) push(ev mwEvent) bool {
	m.mu.Lock()
	if ev.kind == evReply && len(m.q) >= maxBufferedReplies {
		m.mu.Unlock()
		return false
	}
	m.q = append(m.q, ev)
	m.mu.Unlock()
	select {
	case m.sig <- struct{}{}:
	default:
	}
	return true
}

func (m *mwReq) take(buf []mwEvent) []mwEvent {
	m.mu.Lock()
	buf = append(buf[:0], m.q...)
	clear(m.q)
	m.q = m.q[:0]
	m.mu.Unlock()
	return buf
}

// startHandler runs r's middleware chain on a goroutine of its own.
func (l *loop) startHandler(r *request) {
	r.mw = &mwReq{sig: make(chan struct{}, 1)}
	req := &gate.Request{
		Service:  r.svcName,
		Method:   methodName(r.body),
		ID:       r.base,
		Metadata: maps.Clone(r.meta.MD),
		Deadline: r.budgetEnd,
		Peer:     r.client,
		Body:     r.body,
	}
	if req.Metadata == nil {
		req.Metadata = map[string]string{}
	}
	gatehook.SetRole(req, gate.RoleBroker)
	// Early dispatch: when a worker is free now (and not promised to
	// another request started the same way), the goroutine runs the
	// dispatch hook before submitting, and the loop sends the request as
	// soon as it is assigned, saving a mailbox round trip. If the promise
	// does not hold after all (a worker left, or plain requests took the
	// capacity) the request queues with the hook already run: its "queue
	// wait" then reads zero, its dispatch starts early, and should it
	// expire in the queue the hook has reported a dispatch that never
	// reached a worker. The promise counts against s.capacity-s.inflight,
	// so a saturated service takes the exact path (hook on assignment).
	early := false
	if s := l.services[r.svcName]; s != nil && !l.draining && s.nq == 0 && s.capacity-s.inflight-s.promised > 0 {
		s.promised++
		r.promise = s
		early = true
	}
	l.handlers.Add(1)
	b := l.b
	b.handlers.Add(1)
	go b.runHandler(l, r, r.mw, req, early)
}

// unpromise returns the early-dispatch capacity r was promised, if any.
func (l *loop) unpromise(r *request) {
	if s := r.promise; s != nil {
		s.promised--
		r.promise = nil
	}
}

// post runs fn on the loop; it gives up when the broker closes.
func (b *Broker) post(l *loop, fn func()) error {
	return l.mb.Post(b.baseCtx, fn)
}

// runHandler is the request goroutine: chain(inner).ServeRPC.
func (b *Broker) runHandler(l *loop, r *request, mw *mwReq, req *gate.Request, early bool) {
	defer b.handlers.Done()
	ctx, cancel := context.WithCancel(b.baseCtx)
	if !req.Deadline.IsZero() {
		ctx, cancel = context.WithDeadline(b.baseCtx, req.Deadline)
	}
	defer cancel()
	h := &handler{b: b, l: l, r: r, mw: mw, early: early}
	err := b.chain(gate.HandlerFunc(h.serve)).ServeRPC(ctx, req, gate.ReplyWriterFunc(h.relay))
	if h.done {
		// The loop finished the request (evDone) and has nothing left to
		// do for it: skip the mailbox round trip.
		l.handlers.Add(-1)
		return
	}
	_ = b.post(l, func() { l.handlerDone(r, err) })
}

type handler struct {
	b       *Broker
	l       *loop
	r       *request
	mw      *mwReq      // r.mw as it was when the goroutine started: the loop clears r.mw at shutdown
	early   bool        // run the dispatch hook before submitting (see startHandler)
	done    bool        // serve saw evDone; request goroutine only
	passing atomic.Bool // serve is showing a relayed reply to the chain
}

// serve is the broker's innermost handler: queue the request, let the loop
// pick a worker, run the dispatch hook, send, and show replies to w.
//
// Worker replies are relayed to the client by the loop itself, as they
// arrive; the chain observes each of them afterwards through w.Send (in
// order, the final one before serve returns) but cannot rewrite or hold
// them back: what a ReplyWriter wrapper sends while a relayed reply passes
// through is dropped at the base writer. An error from w.Send still
// cancels the rest of the request. Replies the middleware sends on its own
// (outside next, e.g. when it refuses a request) go to the client.
func (h *handler) serve(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
	l, r, mw := h.l, h.r, h.mw
	md := req.Metadata
	// Without a dispatch hook, or with one run early, the loop sends the
	// request when it assigns a worker, without asking back (evAssigned).
	hook := gate.DispatchHookFrom(ctx)
	ready := hook == nil
	if hook != nil && h.early {
		d := gate.Dispatch{Service: r.svcName, Enqueued: r.arrived, Assigned: time.Now(), Metadata: maps.Clone(md)}
		if d.Metadata == nil {
			d.Metadata = map[string]string{}
		}
		hook(ctx, &d)
		md, ready = d.Metadata, true
	}
	if err := h.b.post(l, func() { l.submitMW(r, md, ready) }); err != nil {
		return err
	}
	var evs []mwEvent
	for {
		select {
		case <-mw.sig:
		case <-ctx.Done():
			_ = h.b.post(l, func() { l.abandon(r) })
			return ctx.Err()
		}
		evs = mw.take(evs)
		for i := range evs {
			ev := &evs[i]
			switch ev.kind {
			case evAssigned:
				d := ev.dispatch
				if hook := gate.DispatchHookFrom(ctx); hook != nil {
					hook(ctx, &d)
				}
				md := d.Metadata
				if err := h.b.post(l, func() { l.sendAssigned(r, md) }); err != nil {
					return err
				}
			case evReply:
				h.passing.Store(true)
				err := w.Send(ctx, &gate.Reply{Kind: ev.replyKind, Body: ev.body})
				h.passing.Store(false)
				if err != nil {
					_ = h.b.post(l, func() { l.abandon(r) })
					return err
				}
			case evDone:
				h.done = true
				return ev.err
			}
		}
		clear(evs)
	}
}

// relay is the base ReplyWriter: it hands a reply message the middleware
// sent on its own to the loop, which sends it to the client. A reply the
// loop already relayed (serve is passing it through) is not sent again.
func (h *handler) relay(ctx context.Context, rep *gate.Reply) error {
	if h.passing.Load() {
		return nil
	}
	l, r, body := h.l, h.r, rep.Body
	final := rep.Kind.Final()
	return l.mb.Post(ctx, func() { l.relay(r, body, final) })
}

// ---- loop side ----

func (l *loop) relay(r *request, body [][]byte, final bool) {
	if r.final && final {
		return // a final reply already went out
	}
	r.final = r.final || final
	l.toClient(r.client, r.svcFrame, r.rid, body, final)
}

// submitMW submits r for its middleware goroutine. ready: the dispatch
// hook needs no call (none installed, or it ran early), so the request is
// sent as soon as a worker is assigned.
func (l *loop) submitMW(r *request, md map[string]string, ready bool) {
	l.unpromise(r)
	if r.state != stNew {
		return
	}
	r.meta.MD = md
	r.ready = ready
	l.submit(r)
}

func (l *loop) notifyAssigned(r *request) {
	r.mw.push(mwEvent{kind: evAssigned, dispatch: gate.Dispatch{
		Service:  r.svcName,
		Enqueued: r.arrived,
		Assigned: l.now,
		Metadata: maps.Clone(r.meta.MD),
	}})
}

func (l *loop) sendAssigned(r *request, md map[string]string) {
	if r.state != stAssigned || r.worker == nil || r.worker.dead {
		return
	}
	delete(r.worker.pending, r)
	r.meta.MD = md
	l.dispatch(r, md, true)
	l.checkDrained()
}

// abandon handles a request whose middleware goroutine gave up (ctx done
// or the ReplyWriter failed): it is cancelled like Gate.cancel, except that
// a request in flight on a worker without CANCEL support stays in the
// worker's table (so the capacity comes back with its final reply) but
// its replies are no longer relayed.
func (l *loop) abandon(r *request) {
	if r.state == stDone || r.detached {
		return
	}
	if r.state == stInFlight && !r.worker.gate {
		r.mw = nil
		l.finish(r, OutcomeCancelled, nil, nil)
		l.detach(r) // still occupies the worker until its final reply
		return
	}
	if !l.cancel(r.client, r.base) && r.state != stDone {
		l.finish(r, OutcomeCancelled, nil, nil)
	}
}

// handlerDone runs when a request goroutine returned. If the middleware
// returned without the request being served (it never called the inner
// handler, or returned early), the request is cleaned up and, unless a
// final reply was already relayed, the client gets an exception built
// from err.
func (l *loop) handlerDone(r *request, err error) {
	l.handlers.Add(-1)
	if r.state == stDone {
		l.checkDrained()
		return
	}
	if r.state != stNew {
		l.abandon(r)
		l.checkDrained()
		return
	}
	r.mw = nil
	if r.final {
		l.finish(r, OutcomeMiddleware, nil, nil)
		return
	}
	class, repr := "RuntimeError", "RuntimeError('request refused by broker middleware')"
	var ge *gate.Error
	if errors.As(err, &ge) && ge.Class != "" {
		class, repr = ge.Class, ge.Message
	} else if err != nil {
		ge := gate.Errorf(gate.CodeOf(err), "%s", err.Error())
		class, repr = ge.Class, ge.Message
	}
	l.fail(r, OutcomeMiddleware, class, repr)
}
