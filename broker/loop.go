package broker

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"
	"unsafe"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

const (
	batchLimit      = 256         // messages read from one socket per poll round
	mailboxCapacity = 4096        // pending closures from other goroutines
	closeLinger     = 100         // ms: lets final DISCONNECTs and error replies leave
	maxPollWait     = time.Second // upper bound of one poll, whatever the timers say
)

var (
	frameEmpty   = []byte{}
	frameClient  = []byte(wire.ClientHeader)
	frameWorker  = []byte(wire.WorkerHeader)
	frameGate    = []byte(wire.InternalService)
	cmdRequest   = []byte{byte(wire.CmdRequest)}
	cmdHeartbeat = []byte{byte(wire.CmdHeartbeat)}
	cmdDisc      = []byte{byte(wire.CmdDisconnect)}
	cmdCancel    = []byte{byte(wire.CmdCancel)}
	gateCap      = []byte(wire.GateCapability)
	gateCapAck   = []byte(wire.GateCapabilityAck)
	gateCapFlow  = []byte(wire.GateCapabilityFlow)
	gateCapBatch = []byte(wire.GateCapabilityBatch)
	cmdCredit    = []byte{byte(wire.CmdCredit)}
)

// reqState is where a request is in its life.
type reqState uint8

const (
	stNew      reqState = iota // arriving, or taken from its queue and not yet sent: in no structure
	stQueued                   // waiting for a worker
	stAssigned                 // taken off its worker's table, about to finish
	stInFlight                 // sent to a worker
	stDone                     // finished; any later reply is dropped
)

type service struct {
	name, desc string
	workers    int // live workers
	capacity   int // announced capacity of live workers
	inflight   int

	ring     []*worker // workers with free capacity, round-robin order
	ringHead int

	queue []*request // FIFO; entries no longer stQueued are skipped
	qhead int
	nq    int // live queued

	emptySince time.Time // when its last worker left (zero while it has workers)
}

type worker struct {
	id          []byte
	key         string
	svc         *service
	capacity    int
	used        int
	inRing      bool
	dead        bool
	stalled     bool // taken out of the ring for silence until it speaks (see silent)
	unreachable bool // forgotten because its connection was gone (ghost.go)
	gate        bool // announced wire.GateCapability: understands CANCEL
	ack         bool // announced wire.GateCapabilityAck: a cancelled call still ends with a final reply
	flow        bool // announced wire.GateCapabilityFlow: understands CREDIT (flow.go)
	batch       bool // announced wire.GateCapabilityBatch: may batch stream items when relayed (flow.go)
	lastSent    time.Time
	lastRecv    time.Time
	lastHB      time.Time
	reqs        map[string]*request // in flight, by client+wire request id
	q           *peerQueue          // messages waiting for room in its pipe
}

type request struct {
	svcName   string
	svcFrame  []byte // the service frame as received (replies reuse it)
	client    []byte
	rid       []byte // as the client sent it; replies carry it
	base      []byte
	meta      wire.RequestMeta
	ext       bool
	body      [][]byte
	arrived   time.Time
	budgetEnd time.Time // zero: no caller budget
	deadline  time.Time // queue expiry
	byBudget  bool      // deadline comes from the caller budget
	heapIdx   int
	state     reqState
	worker    *worker
	wireKey   string
	ckey      string
	lastKind  wire.ReplyKind
	detached  bool // abandoned while in flight: replies dropped, capacity kept until final
	obs       RequestObserver
	flow      *flowRec // relayed under flow control (flow.go); nil otherwise

	// arena holds the bytes the request keeps from the message it came
	// in (client, svcFrame, rid, the keys, and body once it has to wait):
	// the loop receives into reused buffers. A record and its arena are
	// reused (see recycle), so ckey and wireKey, which are strings over
	// the arena, are only valid while the record is live.
	arena   []byte
	held    [][]byte // body frames copied into arena (see holdBody)
	ownBody bool     // body is held in arena
}

// hold copies b into r's arena and returns the copy, capped at its
// length. Growing the arena leaves earlier copies in the old array, which
// nothing writes again.
func (r *request) hold(b []byte) []byte {
	off := len(r.arena)
	r.arena = append(r.arena, b...)
	return r.arena[off:len(r.arena):len(r.arena)]
}

// holdString is hold as a string. The string stays unchanged while r is
// live: the arena is only rewritten after recycle.
func (r *request) holdString(b []byte) string {
	h := r.hold(b)
	if len(h) == 0 {
		return ""
	}
	return unsafe.String(&h[0], len(h))
}

// holdBody copies the body into r's arena, for a request that outlives
// the message it came in (it waits in a queue).
func (r *request) holdBody() {
	if r.ownBody {
		return
	}
	held := r.held[:0]
	for _, f := range r.body {
		held = append(held, r.hold(f))
	}
	r.body, r.held, r.ownBody = held, held, true
}

// maxArena bounds the arena a recycled record keeps (ids and keys take a
// few hundred bytes; a large body held while queued is not kept), so the
// free list holds at most maxFree × maxArena bytes of arenas.
const maxArena = 2 << 10

// newRequest takes a request record from the free list, or a new one.
func (l *loop) newRequest() *request {
	if n := len(l.free); n > 0 {
		r := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return r
	}
	return &request{heapIdx: -1}
}

// maxFree bounds the free list of request records.
const maxFree = 4096

// recycle puts r, finished and referenced by nothing (in no map, queue,
// heap or worker table, not detached, not a ghost, its observer done), on
// the free list.
func (l *loop) recycle(r *request) {
	if len(l.free) >= maxFree {
		return
	}
	arena, held := r.arena[:0], r.held
	if cap(arena) > maxArena {
		arena = nil
	}
	clear(held)
	*r = request{heapIdx: -1, arena: arena, held: held[:0]}
	l.free = append(l.free, r)
}

// loop is the state owned by the socket goroutine.
type loop struct {
	b               *Broker
	opts            *options
	log             *slog.Logger
	now             time.Time
	zctx            *zmq.Context
	front           *zmq.Socket
	back            *zmq.Socket
	mb              *zmqx.Queue[func()] // closures from other goroutines (broker.go)
	batch           []func()
	poller          zmqx.Poller
	frontRx, backRx zmqx.Receiver // the frames of the message being handled
	tx              zmqx.Sender
	free            []*request // request records to reuse (recycle)
	sec             *security  // security.go; nil in plain mode

	services map[string]*service
	order    []string // service names in registration order
	workers  map[string]*worker
	reqs     map[string]*request // live requests by client+base id
	// flowClients are the clients of relayed requests, watched for
	// silence (flow.go).
	flowClients map[string]*flowClient
	expiry      reqHeap
	inflight    int

	nextTick time.Time
	draining bool
	drained  []chan struct{}
	closed   bool

	keybuf  []byte
	out     [][]byte
	recvLim zmqx.Limits  // frame count and size, checked as frames arrive
	rep     gate.Reply   // scratch for RequestObserver.Reply
	greq    gate.Request // scratch for Observer.Observe and the admission filter
	ev      Event        // scratch for EventObserver.Event
	disp    Dispatch     // scratch for RequestObserver.Dispatch
	evobs   []EventObserver

	lastMethodRaw, lastMethod string // the last method name decoded (see method)

	clientQ         map[string]*peerQueue // clients with an overflow queue
	peakClientBytes int64                 // most bytes one client's overflow queue has held
	creditBuf       []byte                // scratch for CREDIT payloads
	pending         []*peerQueue          // non-empty overflow queues, to flush

	ghosts    map[string]*ghost    // requests of forgotten workers, by routing id (ghost.go)
	told      map[string]time.Time // routing ids sent DISCONNECT lately (unknownWorker)
	nextPrune time.Time            // next scan for services to forget
	pruned    uint64               // services forgotten

	hbSent, hbRecv, keepalives uint64
	dispatched                 uint64 // Outcomes["dispatched"]
	outcomes, expirations      map[string]uint64
	drops                      map[string]uint64
	svcCalls                   map[string]*callCounts // finished requests by service (services.go)
}

func (b *Broker) run() (err error) {
	l := &loop{
		b:           b,
		opts:        &b.opts,
		log:         b.log,
		services:    make(map[string]*service),
		workers:     make(map[string]*worker),
		reqs:        make(map[string]*request),
		clientQ:     make(map[string]*peerQueue),
		outcomes:    make(map[string]uint64),
		expirations: make(map[string]uint64),
		drops:       make(map[string]uint64),
	}
	l.recvLim = b.opts.recvLimits()
	l.initObservers()
	l.zctx = b.opts.zctx
	own := l.zctx == nil
	if own {
		if l.zctx, err = zmq.NewContext(); err != nil {
			return fmt.Errorf("broker: zmq context: %w", err)
		}
	}
	defer func() {
		l.shutdownSockets()
		l.stopSecurity()
		if l.mb != nil {
			// After Close: answer the posters still waiting.
			for l.mb.Len() > 0 {
				l.runQueued()
			}
		}
		b.mu.Lock()
		b.last = l.snapshot()
		b.mu.Unlock()
		if own {
			l.zctx.SetRetryAfterEINTR(false)
			_ = l.zctx.Term()
		}
	}()
	if err := l.startSecurity(); err != nil {
		return err
	}
	if err := l.open(); err != nil {
		return err
	}
	b.mu.Lock()
	b.mb, b.lp = l.mb, l
	b.frontAddr, _ = l.front.GetLastEndpoint()
	b.backAddr, _ = l.back.GetLastEndpoint()
	fa, ba := b.frontAddr, b.backAddr
	b.mu.Unlock()
	close(b.ready)
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "broker listening",
		slog.String("frontend", fa), slog.String("backend", ba),
		slog.Duration("heartbeat", l.opts.heartbeat), slog.Int("liveness", l.opts.liveness))
	return l.serve()
}

func (l *loop) open() error {
	var err error
	if l.mb, err = zmqx.NewQueue[func()](mailboxCapacity); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	mk := func(ep, name string) (*zmq.Socket, error) {
		s, err := l.zctx.NewSocket(zmq.ROUTER)
		if err != nil {
			return nil, fmt.Errorf("broker: %s socket: %w", name, err)
		}
		max := l.opts.maxMsgSize
		if max < 0 {
			max = 0
		}
		err = zmqx.Setup(s, l.opts.hwm, max, nil)
		if err == nil {
			// A full or unknown peer makes the send fail instead of
			// dropping the message silently (see outq.go).
			err = s.SetRouterMandatory(1)
		}
		if err == nil {
			err = l.secureSocket(s, name, ep)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("broker: %s socket options: %w", name, err)
		}
		if err := s.Bind(ep); err != nil {
			s.Close()
			return nil, fmt.Errorf("broker: bind %s %s: %w", name, ep, err)
		}
		return s, nil
	}
	if l.front, err = mk(l.opts.frontend, "frontend"); err != nil {
		return err
	}
	if l.back, err = mk(l.opts.backend, "backend"); err != nil {
		return err
	}
	// Item order: pollFront, pollBack, pollQueue.
	if _, err = l.poller.AddSocket(l.front, zmq.POLLIN); err == nil {
		_, err = l.poller.AddSocket(l.back, zmq.POLLIN)
	}
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	_, err = l.poller.AddFd(l.mb.Fd())
	return err
}

// The loop's poll items.
const (
	pollFront = iota
	pollBack
	pollQueue
)

// runQueued runs the closures other goroutines queued, in one batch.
func (l *loop) runQueued() {
	l.batch = l.mb.Take(l.batch)
	l.now = time.Now()
	for _, fn := range l.batch {
		fn()
	}
}

func (l *loop) isClosing() bool {
	select {
	case <-l.b.closing:
		return true
	default:
		return false
	}
}

func (l *loop) serve() error {
	l.now = time.Now()
	l.nextTick = l.now
	for !l.isClosing() {
		l.now = time.Now()
		if !l.now.Before(l.nextTick) {
			l.tick()
		}
		l.expireQueued()
		if len(l.pending) > 0 {
			l.flush()
		}
		timeout := l.pollTimeout()
		if l.mb.Sleep() {
			timeout = 0
		}
		_, err := l.poller.Poll(timeout)
		l.mb.Awake(err == nil && l.poller.Ready(pollQueue) != 0)
		if err != nil {
			if isErrno(err, syscall.EINTR) {
				continue
			}
			return fmt.Errorf("broker: poll: %w", err)
		}
		if l.poller.Ready(pollFront) != 0 {
			l.drain(l.front, l.onFrontend, batchLimit, true)
		}
		if l.poller.Ready(pollBack) != 0 {
			l.drain(l.back, l.onBackend, batchLimit, true)
		}
		if l.mb.Len() > 0 {
			l.runQueued()
		}
		l.checkDrained()
	}
	return nil
}

// pollTimeout is the wait until the next timer (heartbeats, queue
// expiry), rounded up to whole milliseconds because zmq_poll truncates
// (a wait under 1 ms would spin), and at most 1 ms while overflow queues
// wait for room.
func (l *loop) pollTimeout() time.Duration {
	next := l.nextTick
	if len(l.expiry) > 0 && l.expiry[0].deadline.Before(next) {
		next = l.expiry[0].deadline
	}
	d := zmqx.PollTimeout(next.Sub(l.now))
	d = (d + time.Millisecond - 1).Truncate(time.Millisecond)
	if len(l.pending) > 0 {
		d = min(d, time.Millisecond)
	}
	return min(d, maxPollWait)
}

// drain reads up to max messages without blocking. l.now is the time each
// message was read, so liveness never rests on a clock taken before a long
// batch. With yield it stops early when the heartbeat timer is due, so a
// backlog cannot hold heartbeats back.
func (l *loop) drain(s *zmq.Socket, handle func([][]byte), max int, yield bool) {
	for range max {
		msg, err := l.recv(s)
		if err != nil {
			if reason := limitReason(err); reason != "" {
				// Discarded inside libzmq, nothing copied (zmqx).
				l.now = time.Now()
				l.drop(l.socketName(s), reason)
				continue
			}
			if e := errnoOf(err); e != errAgain && e != zmq.Errno(syscall.EINTR) {
				l.log.LogAttrs(context.Background(), slog.LevelWarn, "broker: receive failed", slog.String("error", err.Error()))
			}
			return
		}
		l.now = time.Now()
		handle(msg)
		if yield && !l.now.Before(l.nextTick) {
			return
		}
	}
}

func isErrno(err error, e syscall.Errno) bool { return errnoOf(err) == zmq.Errno(e) }

func (l *loop) drop(socket, reason string) {
	l.drops[socket+"/"+reason]++
	if len(l.evobs) > 0 {
		l.ev = Event{Kind: EventDropped, Time: l.now, Socket: socket, Reason: reason}
		l.emit()
	}
}

func (l *loop) dropErr(socket string, err error) {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		l.drop(socket, pe.Reason)
		return
	}
	l.drop(socket, "malformed")
}

// send writes one multipart message without blocking. With
// ROUTER_MANDATORY a full pipe gives EAGAIN and an unknown peer
// EHOSTUNREACH, both on the first frame, so nothing is half sent.
func (l *loop) send(s *zmq.Socket, frames [][]byte) error { return l.tx.Send(s, frames) }

// toClient sends one reply message to a client (or queues it, see
// sendClient). final marks the message that ends its request.
func (l *loop) toClient(client, service, rid []byte, body [][]byte, final bool) {
	l.relayMsg(client, service, rid, body, final, false)
}

// relayMsg is toClient for a worker's reply; flowed marks a stream item or
// HugeData chunk of a request under flow control, which the overflow
// queue counts against the client's byte budget only (outq.go).
func (l *loop) relayMsg(client, service, rid []byte, body [][]byte, final, flowed bool) {
	if l.closed {
		return
	}
	out := append(l.out[:0], client, frameEmpty, frameClient, service, rid)
	out = append(out, body...)
	l.out = out[:0]
	l.sendClient(client, out, final, flowed)
	clear(out)
}

// toWorker sends a command to a worker (queued behind earlier messages if
// its pipe is full) and marks it as recently sent to.
func (l *loop) toWorker(w *worker, frames ...[]byte) {
	if l.closed {
		return
	}
	out := append(l.out[:0], w.id, frameEmpty, frameWorker)
	out = append(out, frames...)
	l.out = out[:0]
	l.sendWorker(w, out, true)
	clear(out)
	w.lastSent = l.now
}

// disconnect sends DISCONNECT to a worker that is being forgotten, best
// effort: whatever was queued for it is dropped.
func (l *loop) disconnect(id []byte) {
	if l.closed {
		return
	}
	out := append(l.out[:0], id, frameEmpty, frameWorker, cmdDisc)
	_ = l.send(l.back, out)
	l.noteDisconnect(id)
	clear(out)
	l.out = out[:0]
}

// key builds a lookup key from a routing id and a request id.
func (l *loop) key(client, rid []byte) []byte {
	k := append(l.keybuf[:0], byte(len(client)))
	k = append(k, client...)
	k = append(k, rid...)
	l.keybuf = k
	return k
}

// ---- frontend ----

func (l *loop) onFrontend(msg [][]byte) {
	client, rest, err := wire.SplitRouting(msg)
	if err != nil {
		l.dropErr("frontend", err)
		return
	}
	l.clientHeard(client)
	svc, rid, body, err := parseRequest(rest)
	if err != nil {
		l.dropErr("frontend", err)
		return
	}
	if string(svc) == wire.InternalService {
		l.event(EventRequest, wire.InternalService)
		l.internal(client, wire.ClientRequest{Service: wire.InternalService, RequestID: rid, Body: body})
		return
	}
	r := l.newRequest()
	r.svcName = l.serviceName(svc)
	l.event(EventRequest, r.svcName)
	// The frames live in the receive buffer until the next message: r
	// keeps copies of what it needs after this one (the body only if it
	// has to wait, see submit).
	if need := 2*len(client) + len(svc) + 2*len(rid) + 1; cap(r.arena) < need {
		r.arena = make([]byte, 0, max(need, 256))
	}
	r.svcFrame = r.hold(svc)
	r.client = r.hold(client)
	r.rid = r.hold(rid)
	r.base = r.rid
	r.body = body
	r.arrived = l.now
	if wire.IsExtended(r.rid) {
		if base, meta, err := wire.DecodeRequestID(r.rid); err == nil {
			r.base, r.meta, r.ext = base, meta, true
			if meta.Budget > 0 {
				r.budgetEnd = l.now.Add(meta.Budget)
			}
		}
	}
	k := l.key(r.client, r.base)
	if _, dup := l.reqs[string(k)]; dup {
		l.drop("frontend", "duplicate_request")
		l.recycle(r)
		return
	}
	r.ckey = r.holdString(k)
	l.reqs[r.ckey] = r
	if !l.arrive(r) {
		return
	}
	l.submit(r)
}

// parseRequest is wire.ParseClientRequest without the service name's
// string, which serviceName finds among the known services.
func parseRequest(rest [][]byte) (svc, rid []byte, body [][]byte, err error) {
	if len(rest) >= 4 && len(rest[0]) == 0 && bytes.Equal(rest[1], frameClient) && len(rest[2]) > 0 {
		return rest[2], rest[3], rest[4:], nil
	}
	cr, err := wire.ParseClientRequest(rest) // the same checks: it names the error
	if err != nil {
		return nil, nil, nil, err
	}
	return rest[2], cr.RequestID, cr.Body, nil
}

// serviceName is the name of the service frame svc: a registered
// service's own name (no new string), else a copy.
func (l *loop) serviceName(svc []byte) string {
	if s := l.services[string(svc)]; s != nil {
		return s.name
	}
	return string(svc)
}

// submit routes a new request: dispatch, queue or refuse.
func (l *loop) submit(r *request) {
	s := l.services[r.svcName]
	switch {
	case l.draining:
		l.fail(r, OutcomeShutdown, "ServiceUnAvailableError", unavailableRepr(r.svcName))
		return
	case s == nil || s.workers == 0:
		l.fail(r, OutcomeNoService, "ServiceUnAvailableError", unavailableRepr(r.svcName))
		return
	}
	if s.nq == 0 {
		if w := l.pick(s); w != nil {
			l.assign(r, w)
			return
		}
	}
	if s.nq >= l.opts.queueLimit {
		l.fail(r, OutcomeFull, "BusyWorkerError", "BusyWorkerError('No idle worker.')")
		return
	}
	r.holdBody() // it outlives the message it came in
	r.state = stQueued
	r.deadline = r.arrived.Add(l.opts.queueTimeout)
	if !r.budgetEnd.IsZero() && r.budgetEnd.Before(r.deadline) {
		r.deadline, r.byBudget = r.budgetEnd, true
	}
	heap.Push(&l.expiry, r)
	s.queue = append(s.queue, r)
	s.nq++
	l.event(EventQueued, r.svcName)
}

func unavailableRepr(svc string) string {
	return "ServiceUnAvailableError(" + pyRepr("The "+svc+" Service unavailable.") + ")"
}

// pick takes the next worker of s with free capacity, round-robin.
func (l *loop) pick(s *service) *worker {
	for s.ringHead < len(s.ring) {
		w := s.ring[s.ringHead]
		s.ring[s.ringHead] = nil
		s.ringHead++
		w.inRing = false
		if w.dead || w.used >= w.capacity {
			continue
		}
		if l.silent(w) {
			w.stalled = true // back in the ring when it speaks (unstall)
			continue
		}
		w.used++
		if w.used < w.capacity {
			l.ringPush(w)
		}
		l.compactRing(s)
		return w
	}
	s.ring, s.ringHead = s.ring[:0], 0
	return nil
}

func (l *loop) ringPush(w *worker) {
	if w.inRing || w.dead || w.stalled || w.used >= w.capacity {
		return
	}
	w.inRing = true
	w.svc.ring = append(w.svc.ring, w)
}

func (l *loop) compactRing(s *service) {
	if s.ringHead > 32 && s.ringHead*2 > len(s.ring) {
		n := copy(s.ring, s.ring[s.ringHead:])
		clear(s.ring[n:])
		s.ring, s.ringHead = s.ring[:n], 0
	}
}

// popQueued takes the oldest live queued request of s.
func (l *loop) popQueued(s *service) *request {
	for s.qhead < len(s.queue) {
		r := s.queue[s.qhead]
		s.queue[s.qhead] = nil
		s.qhead++
		if r.state == stQueued {
			s.nq--
			heap.Remove(&l.expiry, r.heapIdx)
			r.state = stNew // in no structure until assigned or finished
			l.compactQueue(s)
			return r
		}
	}
	s.queue, s.qhead = s.queue[:0], 0
	return nil
}

func (l *loop) compactQueue(s *service) {
	if s.qhead > 64 && s.qhead*2 > len(s.queue) {
		n := copy(s.queue, s.queue[s.qhead:])
		clear(s.queue[n:])
		s.queue, s.qhead = s.queue[:n], 0
	}
	if dead := len(s.queue) - s.qhead - s.nq; dead > 64 && dead > s.nq {
		live := s.queue[:0]
		for _, r := range s.queue[s.qhead:] {
			if r.state == stQueued {
				live = append(live, r)
			}
		}
		clear(s.queue[len(live):])
		s.queue, s.qhead = live, 0
	}
}

// unqueue removes a queued request from its service queue and the expiry
// heap (the queue slot is skipped later).
func (l *loop) unqueue(r *request) {
	if s := l.services[r.svcName]; s != nil {
		s.nq--
	}
	if r.heapIdx >= 0 {
		heap.Remove(&l.expiry, r.heapIdx)
	}
	r.state = stDone
}

// dispatchQueued hands queued requests of s to workers with free capacity.
func (l *loop) dispatchQueued(s *service) {
	for s.nq > 0 {
		if s.ringHead >= len(s.ring) {
			return
		}
		w := l.pick(s)
		if w == nil {
			return
		}
		r := l.popQueued(s)
		if r == nil {
			l.release(w)
			return
		}
		l.assign(r, w)
	}
}

// assign gives r to w, whose capacity is already taken.
func (l *loop) assign(r *request, w *worker) {
	r.worker = w
	l.dispatch(r)
}

// dispatch sends r to its worker, with the metadata its observer gives
// (see observeDispatch) or as it came.
func (l *loop) dispatch(r *request) {
	w := r.worker
	md, reencode := r.meta.MD, false
	var rem time.Duration
	if !r.budgetEnd.IsZero() {
		rem = r.budgetEnd.Sub(l.now)
		if rem < time.Microsecond {
			l.release(w)
			l.fail(r, OutcomeTimeout, "TimeoutError", "TimeoutError("+pyRepr("deadline exceeded while queued for "+r.svcName)+")")
			return
		}
	}
	if r.obs != nil {
		md, reencode = l.observeDispatch(r, md), true
	}
	md, flow, changed := flowMeta(w, md)
	reencode = reencode || changed
	wireRid := r.rid
	if !r.budgetEnd.IsZero() {
		wireRid = wire.EncodeRequestID(r.base, wire.RequestMeta{Budget: rem, MD: md})
	} else if reencode {
		wireRid = wire.EncodeRequestID(r.base, wire.RequestMeta{MD: md})
	}
	out := append(l.out[:0], w.id, frameEmpty, frameWorker, cmdRequest, r.client, frameEmpty, wireRid)
	out = append(out, r.body...)
	l.out = out[:0]
	ok := l.sendWorker(w, out, false)
	clear(out)
	if !ok {
		switch {
		case w.dead: // its connection is gone: the REQUEST never left
			r.worker, r.state = nil, stNew
			l.submit(r)
		case w.q != nil:
			l.release(w)
			l.fail(r, OutcomeFull, "BusyWorkerError", "BusyWorkerError('worker send queue full')")
		default:
			l.release(w)
			l.fail(r, OutcomeInternalErr, "ServiceUnAvailableError", unavailableRepr(r.svcName))
		}
		return
	}
	w.lastSent = l.now
	r.body, r.ownBody = nil, false // sent: the body is not needed again
	if bytes.Equal(wireRid, r.base) && !r.ext {
		r.wireKey = r.ckey
	} else {
		r.wireKey = r.holdString(l.key(r.client, wireRid))
	}
	w.reqs[r.wireKey] = r
	r.state = stInFlight
	r.flow = flow
	if flow != nil {
		l.watchClient(r)
	}
	w.svc.inflight++
	l.inflight++
	l.dispatched++ // a plain counter: this is the per-request hot path
	if len(l.evobs) > 0 {
		l.ev = Event{Kind: EventDispatched, Time: l.now, Service: r.svcName, Wait: l.now.Sub(r.arrived)}
		l.emit()
	}
}

// release returns one unit of capacity to w and serves its queue.
func (l *loop) release(w *worker) {
	if w.used > 0 {
		w.used--
	}
	if w.dead {
		return
	}
	l.ringPush(w)
	if w.svc.nq > 0 {
		l.dispatchQueued(w.svc)
	}
}

// fail finishes r with a broker-generated exception. If the client has
// already seen stream or HugeData messages the exception uses that
// stream's error marker, so the client's stream ends properly.
func (l *loop) fail(r *request, outcome, class, repr string) {
	l.finish(r, outcome, failBody(r, class, repr), errorFor(class, repr))
}

// failBody is the exception message that ends r for its client.
func failBody(r *request, class, repr string) [][]byte {
	switch r.lastKind {
	case wire.ReplyStreamItem:
		return wire.StreamErrorBody(codec.AppendTriple(nil, class, repr, ""))
	case wire.ReplyHugeChunk:
		return wire.HugeErrorBody(codec.AppendTriple(nil, class, repr, ""))
	default:
		return wire.SingleBody(codec.ExceptionMap(class, repr, ""))
	}
}

// finish ends r: forget it, count the outcome, and deliver body (if any)
// to the client.
func (l *loop) finish(r *request, outcome string, body [][]byte, err error) {
	if r.detached || (r.state == stDone && r.ckey == "") {
		// Already finished; a detached r stays on its worker until the
		// worker's final reply (or the worker's removal) forgets it.
		return
	}
	if r.state == stQueued {
		l.unqueue(r)
	}
	r.state = stDone
	if cur, ok := l.reqs[r.ckey]; ok && cur == r {
		delete(l.reqs, r.ckey)
	}
	r.ckey = ""
	if r.flow != nil {
		l.unwatchClient(r)
	}
	switch outcome {
	case OutcomeOK, OutcomeError:
	default:
		l.outcomes[outcome]++
	}
	l.countCall(r.svcName, outcome)
	if len(l.evobs) > 0 {
		l.ev = Event{Kind: EventFinished, Time: l.now, Service: r.svcName, Outcome: outcome, Wait: l.now.Sub(r.arrived)}
		l.emit()
	}
	if r.obs != nil {
		l.observeFinish(r, outcome, err)
	}
	if body != nil {
		l.toClient(r.client, r.svcFrame, r.rid, body, true)
	}
}

// ---- backend ----

func (l *loop) onBackend(msg [][]byte) {
	id, rest, err := wire.SplitRouting(msg)
	if err != nil {
		l.dropErr("backend", err)
		return
	}
	m, err := wire.ParseWorkerMessage(rest)
	if err != nil {
		l.dropErr("backend", err)
		return
	}
	w := l.workers[string(id)]
	if !l.admit(id, w, m) {
		return
	}
	if w != nil {
		w.lastRecv = l.now
	}
	switch m.Command {
	case wire.CmdReady:
		l.onReady(id, w, m)
	case wire.CmdReply:
		if w == nil {
			l.ghostReply(id, m)
			l.unknownWorker(id)
			return
		}
		l.onReply(w, m)
	case wire.CmdHeartbeat:
		if w == nil {
			l.unknownWorker(id)
			return
		}
		l.hbRecv++
		if len(m.Extra) == 1 {
			switch {
			case bytes.Equal(m.Extra[0], gateCap):
				w.gate = true
			case bytes.Equal(m.Extra[0], gateCapAck):
				w.gate, w.ack = true, true
			case bytes.Equal(m.Extra[0], gateCapFlow):
				w.gate, w.ack, w.flow = true, true, true
			case bytes.Equal(m.Extra[0], gateCapBatch):
				w.gate, w.ack, w.flow, w.batch = true, true, true, true
			}
		}
		l.event(EventHeartbeatReceived, "")
	case wire.CmdDisconnect:
		if w == nil {
			l.drop("backend", "unknown_worker")
			return
		}
		l.removeWorker(w, GoneDisconnect, false)
	default: // REQUEST and CANCEL only travel broker -> worker
		l.drop("backend", wire.ReasonCommand)
	}
	if w != nil && w.stalled {
		l.unstall(w)
	}
}

func (l *loop) onReady(id []byte, w *worker, m wire.WorkerMessage) {
	if w != nil {
		// spec 3.1 / quirk 6: a second READY bans the worker.
		l.removeWorker(w, GoneDuplicateReady, true)
		return
	}
	if m.Service == wire.InternalService {
		l.drop("backend", "reserved_service")
		l.disconnect(id)
		return
	}
	if l.draining {
		l.drop("backend", "shutting_down")
		l.disconnect(id)
		return
	}
	if reason := l.refuseReady(m); reason != "" {
		l.drop("backend", reason)
		l.disconnect(id)
		return
	}
	s := l.services[m.Service]
	if s == nil {
		if !l.roomForService() {
			l.drop("backend", "too_many_services")
			l.disconnect(id)
			return
		}
		s = &service{name: m.Service, desc: m.Description}
		l.services[m.Service] = s
		l.order = append(l.order, m.Service)
	}
	// Counted only for a READY that is accepted.
	capacity := m.Capacity
	if capacity > l.opts.limits.maxCapacity {
		capacity = l.opts.limits.maxCapacity
		l.drop("backend", "capacity_clamped")
	}
	s.emptySince = time.Time{}
	w = &worker{
		id:       bytes.Clone(id), // id is in the receive buffer
		key:      string(id),
		svc:      s,
		capacity: capacity,
		lastRecv: l.now,
		reqs:     make(map[string]*request),
	}
	l.workers[w.key] = w
	s.workers++
	s.capacity += w.capacity
	l.restoreGhosts(w)
	l.ringPush(w)
	// quirk 9: the first HEARTBEAT goes out at once.
	l.heartbeat(w)
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "worker ready",
		slog.String("gaterpc.service", s.name), slog.String("worker.id", hexID(id)), slog.Int("capacity", w.capacity))
	l.event(EventWorkerReady, s.name)
	l.dispatchQueued(s)
}

func (l *loop) heartbeat(w *worker) {
	l.toWorker(w, cmdHeartbeat)
	w.lastHB = l.now
	l.hbSent++
	l.event(EventHeartbeatSent, "")
}

func (l *loop) onReply(w *worker, m wire.WorkerMessage) {
	r := w.reqs[string(l.key(m.Client, m.RequestID))]
	if r == nil {
		l.drop("backend", "unknown_request")
		return
	}
	kind, payload := wire.ClassifyReply(m.Body)
	if r.detached {
		if kind.Final() {
			l.forget(r)
			r.state = stDone
		}
		return
	}
	relayed := false
	if f := r.flow; f != nil && (kind == wire.ReplyStreamItem || kind == wire.ReplyHugeChunk) {
		if !f.take(m.Body, payload) {
			l.flowViolation(r, kind)
			return
		}
		relayed = true
	}
	if len(l.evobs) > 0 {
		n := 0
		for _, f := range m.Body {
			n += len(f)
		}
		l.ev = Event{Kind: EventReply, Time: l.now, Service: r.svcName, Reply: kind, Size: n}
		l.emit()
	}
	if r.obs != nil {
		l.rep = gate.Reply{Kind: kind, Body: m.Body}
		r.obs.Reply(&l.rep)
		l.rep = gate.Reply{}
	}
	if kind == wire.ReplyStreamItem || kind == wire.ReplyHugeChunk {
		r.lastKind = kind // before relaying: a failure there uses the stream's marker
	}
	l.relayMsg(r.client, r.svcFrame, r.rid, m.Body, kind.Final(), relayed)
	// The client may have been failed (too slow) or be gone.
	if r.detached {
		if kind.Final() {
			l.forget(r)
			r.state = stDone
		}
		return
	}
	if r.state == stDone || !kind.Final() {
		return
	}
	outcome := OutcomeOK
	if kind.IsError() || (kind == wire.ReplySingle && !codec.HasNoException(m.Body[0])) {
		outcome = OutcomeError
	}
	w = r.worker
	l.unflight(r)
	l.finish(r, outcome, nil, nil)
	l.release(w) // after finish: the next request is dispatched after this one ended
	// r is in no table now (finish and unflight took it out, it was
	// neither detached nor a ghost): its record can serve the next one.
	l.recycle(r)
}

// forget removes an in-flight r from its worker and returns the capacity.
func (l *loop) forget(r *request) {
	if l.unflight(r) {
		l.release(r.worker)
	}
}

// unflight removes an in-flight r from its worker's table.
func (l *loop) unflight(r *request) bool {
	w := r.worker
	if w == nil || r.state != stInFlight || w.reqs[r.wireKey] != r {
		return false
	}
	delete(w.reqs, r.wireKey)
	w.svc.inflight--
	l.inflight--
	r.state = stAssigned // no longer in flight; finish marks it done
	return true
}

// removeWorker forgets w. Its in-flight requests fail at once.
func (l *loop) removeWorker(w *worker, reason string, disconnect bool) {
	if w.dead {
		return
	}
	if q := w.q; q != nil {
		q.dead = true
		l.unlist(q)
	}
	if disconnect {
		l.disconnect(w.id)
	}
	w.dead = true
	delete(l.workers, w.key)
	l.rememberGhosts(w, reason)
	s := w.svc
	s.workers--
	s.capacity -= w.capacity
	l.expirations[reason]++
	lvl := slog.LevelInfo
	if reason == GoneHeartbeat || reason == GoneProtocol {
		lvl = slog.LevelWarn
	}
	l.log.LogAttrs(context.Background(), lvl, "worker gone", slog.String("gaterpc.service", s.name),
		slog.String("worker.id", hexID(w.id)), slog.String("reason", reason), slog.Int("in_flight", len(w.reqs)))
	if len(l.evobs) > 0 {
		l.ev = Event{Kind: EventWorkerGone, Time: l.now, Service: s.name, Reason: reason}
		l.emit()
	}
	repr := "WorkerLostError(" + pyRepr("worker lost while serving "+s.name) + ")"
	for _, r := range w.reqs {
		s.inflight--
		l.inflight--
		r.state = stAssigned
		l.fail(r, OutcomeWorkerLost, "WorkerLostError", repr)
	}
	clear(w.reqs)
	if s.workers == 0 {
		s.emptySince = l.now
		for r := l.popQueued(s); r != nil; r = l.popQueued(s) {
			l.fail(r, OutcomeNoService, "ServiceUnAvailableError", unavailableRepr(s.name))
		}
	}
}

// ---- timers ----

// tick sends due heartbeats and expires silent workers.
func (l *loop) tick() {
	hb := l.opts.heartbeat
	ttl := hb * time.Duration(l.opts.liveness)
	l.now = time.Now()
	for _, w := range l.workers {
		if l.now.Sub(w.lastRecv) >= ttl {
			// Before expiring anyone, read what is waiting on the backend:
			// a worker's answer may sit unread behind a backlog. The
			// ROUTER fair-queues its peers, so reading more messages than
			// there are peers reaches every peer that has one waiting.
			l.drain(l.back, l.onBackend, batchLimit+2*len(l.workers), false)
			l.now = time.Now()
			break
		}
	}
	var dead []*worker
	for _, w := range l.workers {
		if l.now.Sub(w.lastRecv) >= ttl {
			dead = append(dead, w)
			continue
		}
		// Heartbeat when nothing was sent for an interval (Python's rule),
		// and also probe a worker that has been silent for an interval
		// while it keeps receiving requests, so that a busy but healthy
		// worker answers and is not expired.
		if w.q != nil {
			continue // its pipe is full: it has plenty to read
		}
		if l.now.Sub(w.lastSent) >= hb || (l.now.Sub(w.lastRecv) >= hb && l.now.Sub(w.lastHB) >= hb) {
			l.heartbeat(w)
		}
	}
	for _, w := range dead {
		l.removeWorker(w, GoneHeartbeat, true)
	}
	l.expireSilentClients(ttl)
	if !l.now.Before(l.nextPrune) {
		l.pruneServices()
		l.pruneGhosts()
		l.pruneTold()
		l.nextPrune = l.now.Add(hb)
	}
	step := max(hb/4, time.Millisecond)
	l.nextTick = l.now.Add(step)
}

// expireQueued fails queued requests whose wait is over.
func (l *loop) expireQueued() {
	for len(l.expiry) > 0 && !l.expiry[0].deadline.After(l.now) {
		r := l.expiry[0]
		if r.byBudget {
			l.fail(r, OutcomeTimeout, "TimeoutError", "TimeoutError("+pyRepr("deadline exceeded while queued for "+r.svcName)+")")
		} else {
			l.fail(r, OutcomeExpired, "BusyWorkerError", "BusyWorkerError('No idle worker.')")
		}
	}
}

// ---- shutdown ----

func (l *loop) startDrain(drained chan struct{}) {
	l.drained = append(l.drained, drained)
	if l.draining {
		l.checkDrained()
		return
	}
	l.draining = true
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "broker draining", slog.Int("in_flight", l.inflight))
	for _, name := range l.order {
		s := l.services[name]
		for r := l.popQueued(s); r != nil; r = l.popQueued(s) {
			l.fail(r, OutcomeShutdown, "ServiceUnAvailableError", unavailableRepr(s.name))
		}
	}
	l.checkDrained()
}

func (l *loop) checkDrained() {
	if l.draining && len(l.drained) > 0 && l.inflight == 0 {
		for _, ch := range l.drained {
			close(ch)
		}
		l.drained = nil
	}
}

// shutdownSockets fails what is left, disconnects workers and closes every
// socket. It runs once, on the loop goroutine, when the loop ends.
func (l *loop) shutdownSockets() {
	if l.front != nil && l.back != nil && l.mb != nil {
		l.now = time.Now()
		l.draining = true
		for _, name := range l.order { // queued first, so nothing is dispatched now
			s := l.services[name]
			for r := l.popQueued(s); r != nil; r = l.popQueued(s) {
				l.fail(r, OutcomeShutdown, "ServiceUnAvailableError", unavailableRepr(s.name))
			}
		}
		for _, r := range l.reqs {
			if r.state == stInFlight {
				l.forget(r)
			}
			l.fail(r, OutcomeShutdown, "ServiceUnAvailableError", unavailableRepr(r.svcName))
		}
		l.flush() // last chance for what waits in overflow queues
		for _, w := range l.workers {
			l.disconnect(w.id)
			l.expirations[GoneShutdown]++
			if len(l.evobs) > 0 {
				l.ev = Event{Kind: EventWorkerGone, Time: l.now, Service: w.svc.name, Reason: GoneShutdown}
				l.emit()
			}
		}
		clear(l.workers)
	}
	l.closed = true
	for _, s := range []*zmq.Socket{l.front, l.back} {
		if s != nil {
			_ = s.SetLinger(closeLinger * time.Millisecond)
			_ = s.Close()
		}
	}
	if l.mb != nil {
		l.b.mu.Lock()
		l.b.mb = nil
		l.b.mu.Unlock()
		l.mb.Close()
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "broker stopped")
}

// ---- stats ----

func (l *loop) snapshot() Stats {
	st := Stats{
		Time:               time.Now(),
		InFlight:           l.inflight,
		HeartbeatsSent:     l.hbSent,
		HeartbeatsReceived: l.hbRecv,
		ClientKeepalives:   l.keepalives,
		Outcomes:           cloneCounts(l.outcomes),
		Expirations:        cloneCounts(l.expirations),
		Drops:              cloneCounts(l.drops),
		Workers:            len(l.workers),
		Requests:           len(l.reqs),
		MaxClientBuffered:  l.peakClientBytes,
		AuthFailures:       l.authFailures(),
		ServicesPruned:     l.pruned,
	}
	st.Buffered, st.BufferedBytes = l.buffered()
	if l.dispatched > 0 {
		st.Outcomes["dispatched"] = l.dispatched
	}
	for _, name := range sortedNames(l.services) {
		s := l.services[name]
		ss := ServiceStats{
			Name:        s.name,
			Description: s.desc,
			Workers:     map[string]int{"idle": 0, "busy": 0, "full": 0},
			Capacity:    s.capacity,
			InFlight:    s.inflight,
			Queued:      s.nq,
		}
		for _, r := range s.queue[s.qhead:] {
			if r.state == stQueued {
				ss.OldestQueue = st.Time.Sub(r.arrived)
				break
			}
		}
		st.Services = append(st.Services, ss)
	}
	for _, w := range l.workers {
		ss := &st.Services[indexOf(st.Services, w.svc.name)]
		if l.silent(w) {
			ss.Stalled++
		}
		switch {
		case w.used >= w.capacity:
			ss.Workers["full"]++
		case w.used == 0:
			ss.Workers["idle"]++
		default:
			ss.Workers["busy"]++
		}
	}
	return st
}

func indexOf(ss []ServiceStats, name string) int {
	lo, hi := 0, len(ss)
	for lo < hi {
		m := (lo + hi) / 2
		if ss[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func cloneCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- expiry heap ----

type reqHeap []*request

func (h reqHeap) Len() int           { return len(h) }
func (h reqHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h reqHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *reqHeap) Push(x any) {
	r := x.(*request)
	r.heapIdx = len(*h)
	*h = append(*h, r)
}
func (h *reqHeap) Pop() any {
	old := *h
	n := len(old)
	r := old[n-1]
	old[n-1] = nil
	r.heapIdx = -1
	*h = old[:n-1]
	return r
}
