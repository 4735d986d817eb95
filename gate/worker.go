package gate

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// mailboxSize bounds the replies queued for the socket loop; producers
// (handlers) wait for room, which is the worker's back-pressure.
const mailboxSize = 1024

// maxWorkerRecv bounds how many messages the loop reads before it sends
// the queued replies again.
const maxWorkerRecv = 256

// byeFrame is the one extra frame of the worker's DISCONNECT: a 0.2.12
// broker ignores a DISCONNECT without exactly one.
var byeFrame = []byte("bye")

// WithPoolSize sets the size of the worker's default goroutine pool, the
// executor of every method registered without [WithExecutor] (default
// 128; 0 keeps the default).
func WithPoolSize(n int) WorkerOption {
	return workerOptionFunc(func(o *workerOptions) {
		switch {
		case n < 0:
			o.common.invalid("pool size %d: must be at least 1", n)
		case n > 0:
			o.poolSize = n
		}
	})
}

// WithExecutorDepthHook makes the worker report how many requests wait for
// an executor slot: fn gets the service, the executor kind ("inline",
// "pool" or "process") and the new depth each time it changes, and 0 for
// "pool" when the worker starts, so the series exists before any load.
// fn runs on request goroutines, concurrently: it must be cheap and safe for
// concurrent use (telemetry's ServerMetrics.SetExecutorQueueDepth is).
func WithExecutorDepthHook(fn func(service, executor string, depth int)) WorkerOption {
	return workerOptionFunc(func(o *workerOptions) { o.depthHook = fn })
}

// WithCapacity sets the capacity the worker announces in READY and its
// in-flight limit (Settings.MessageMax). Requests beyond it get a
// RuntimeError exception reply.
func WithCapacity(n int) WorkerOption {
	return workerOptionFunc(func(o *workerOptions) { WithMessageMax(n).applyCommon(&o.common) })
}

// Worker serves one [Service] to a broker: it connects a DEALER to the
// broker's backend, announces READY name:description:capacity, answers
// requests through its middleware chain, heartbeats, and reconnects with a
// fresh routing id when the broker goes silent (at once, the backoff
// lengthening the new connection's silence window) or sends DISCONNECT
// (after the backoff).
//
// Lifecycle follows net/http: [Worker.Serve] blocks; [Worker.Shutdown]
// finishes in-flight calls, then sends DISCONNECT; [Worker.Close] stops at
// once. Serve, Shutdown and Close are safe for concurrent use. Each
// Worker owns its socket and, unless [WithZMQContext] is given, its
// zmq.Context.
type Worker struct {
	endpoint string
	svc      *Service
	s        Settings
	log      *slog.Logger
	zctx     *zmq.Context
	handler  Handler
	cdc      *codec.Codec
	env      *replyEnv
	pool     *Pool

	serving   atomic.Bool
	closing   chan struct{}
	closeOnce sync.Once
	draining  chan struct{}
	drainOnce sync.Once
	done      chan struct{} // closed when Serve returns
	life      context.Context
	lifeStop  context.CancelFunc
	out       atomic.Pointer[zmqx.Queue[outMsg]] // handlers → loop, bounded: back-pressure

	mu       sync.Mutex
	inflight map[string]*workCall
	count    int
	wg       sync.WaitGroup // request goroutines (runners)
	work     chan *workCall // idle runners wait here for their next call

	connects atomic.Int64
	reg      registration // wait.go: the broker has spoken since READY

	depthHook func(service, executor string, depth int)
	depths    [3]atomic.Int64 // waiting requests by execKind
}

// Executor kinds, for queue-depth reporting.
const (
	execInline = iota
	execPool
	execProcess
)

var execNames = [...]string{"inline", "pool", "process"}

func execKind(e Executor) int {
	switch e.(type) {
	case *Pool:
		return execPool
	case *ProcessPool:
		return execProcess
	}
	return execInline
}

// waiting adds delta to the number of requests waiting for an executor of
// kind k and reports the new depth to the hook.
func (w *Worker) waiting(k int, delta int64) {
	n := w.depths[k].Add(delta)
	if w.depthHook != nil {
		w.depthHook(w.svc.name, execNames[k], int(n))
	}
}

// NewWorker returns a worker for svc that will connect to the broker
// backend at endpoint (Settings.WorkerAddr when empty). It does not
// connect until [Worker.Serve]. Errors wrap [ErrInvalidOption].
func NewWorker(endpoint string, svc *Service, opts ...WorkerOption) (*Worker, error) {
	if svc == nil {
		return nil, fmt.Errorf("gate: NewWorker: %w: nil service", ErrInvalidOption)
	}
	o := workerOptions{poolSize: defaultPoolSize}
	for _, opt := range opts {
		if opt != nil {
			opt.applyWorker(&o)
		}
	}
	s, err := o.common.settings()
	if err != nil {
		return nil, fmt.Errorf("gate: NewWorker: %w", err)
	}
	if endpoint == "" {
		endpoint = s.WorkerAddr
	}
	if svc.name == s.InternalService {
		return nil, fmt.Errorf("gate: NewWorker: %w: service %q is the broker's internal service", ErrInvalidOption, svc.name)
	}
	pool, err := NewPool(o.poolSize)
	if err != nil {
		return nil, fmt.Errorf("gate: NewWorker: %w", err)
	}
	cdc, err := codec.New(codec.MaxStrLen(s.MaxStrLen), codec.MaxBinLen(s.MaxBinLen), codec.MaxEntries(s.MaxEntries))
	if err != nil {
		return nil, fmt.Errorf("gate: NewWorker: %w: %v", ErrInvalidOption, err)
	}
	// Results are encoded with the str/bin caps raised to HugeDataMaxSize:
	// a value over MaxBinLen leaves as HugeData, which HugeDataMaxSize
	// bounds at the receiver (MaxBinLen bounds what the worker decodes).
	resCdc, err := codec.New(codec.MaxStrLen(max(s.MaxStrLen, int(s.HugeDataMaxSize))),
		codec.MaxBinLen(max(s.MaxBinLen, int(s.HugeDataMaxSize))), codec.MaxEntries(s.MaxEntries))
	if err != nil {
		return nil, fmt.Errorf("gate: NewWorker: %w: %v", ErrInvalidOption, err)
	}
	w := &Worker{
		endpoint:  endpoint,
		svc:       svc,
		s:         s,
		log:       o.common.log(),
		zctx:      o.common.zctx,
		cdc:       cdc,
		pool:      pool,
		depthHook: o.depthHook,
		closing:   make(chan struct{}),
		draining:  make(chan struct{}),
		done:      make(chan struct{}),
		inflight:  map[string]*workCall{},
		work:      make(chan *workCall),
	}
	w.env = &replyEnv{cdc: resCdc, s: &w.s}
	w.life, w.lifeStop = context.WithCancel(context.Background())
	w.handler = Chain(o.common.mws...)(HandlerFunc(w.dispatch))
	if w.depthHook != nil {
		w.depthHook(svc.name, execNames[execPool], 0)
	}
	return w, nil
}

// NewWorker is shorthand for gate.NewWorker(endpoint, s, opts...).
func (s *Service) NewWorker(endpoint string, opts ...WorkerOption) (*Worker, error) {
	return NewWorker(endpoint, s, opts...)
}

// Settings returns the worker's effective settings.
func (w *Worker) Settings() Settings { return w.s }

// Serve connects to the broker and serves requests until Shutdown or
// Close (then it returns [ErrClosed]) or until ctx is done (then it stops
// as Close does and returns ctx's error). It returns other errors only
// when the socket cannot be created. Before returning it waits for every
// running handler, whose ctx it cancels. Serve may be called once.
func (w *Worker) Serve(ctx context.Context) error {
	if !w.serving.CompareAndSwap(false, true) {
		return errors.New("gate: Worker.Serve called twice")
	}
	defer close(w.done)
	select {
	case <-w.closing:
		return ErrClosed
	default:
	}
	stop := context.AfterFunc(ctx, w.fireClose)
	defer stop()
	err := w.loop()
	w.lifeStop()
	w.wg.Wait()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrClosed
}

// Shutdown stops accepting requests (new ones get a
// ServiceUnAvailableError reply), waits for in-flight calls to finish and
// their replies to be sent, then sends DISCONNECT and closes the socket.
// If ctx ends first, it closes the worker as Close does and returns ctx's
// error.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.drainOnce.Do(func() { close(w.draining) })
	w.wake()
	if !w.serving.Load() {
		return w.Close()
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.Close()
		return ctx.Err()
	}
}

// Close stops the worker at once: it cancels running handlers, sends
// DISCONNECT, closes the socket and waits for Serve to return. It is
// idempotent and returns nil.
func (w *Worker) Close() error {
	w.fireClose()
	if w.serving.Load() {
		<-w.done
	}
	return nil
}

func (w *Worker) fireClose() {
	w.closeOnce.Do(func() {
		close(w.closing)
		w.lifeStop()
	})
	w.wake()
}

func (w *Worker) wake() {
	if q := w.out.Load(); q != nil {
		q.Wake()
	}
}

func (w *Worker) isDraining() bool {
	select {
	case <-w.draining:
		return true
	default:
		return false
	}
}

// workCall is one request in flight at a worker.
type workCall struct {
	key    string
	client []byte
	rid    []byte // the request id frame as received (echoed verbatim)
	body   [][]byte
	gen    uint64
	recvd  time.Time

	// Set by serveCall under w.mu; canceled records a cancel that came
	// before the ctx existed.
	ctx      context.Context
	cancel   context.CancelFunc
	canceled bool

	// Flow control of a relayed call (set by serveCall under w.mu), and
	// the credit that arrived before it was set.
	flow  *flowCtl
	early wire.Credit
}

func callKey(client, rid []byte) string {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(client)+len(rid)), uint64(len(client)))
	b = append(append(b, client...), rid...)
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

// workerLoop is the worker role on the connection engine: the state of
// the socket-owning goroutine. Only that goroutine touches it; handlers
// push their replies onto e.out.
type workerLoop struct {
	w           *Worker
	zctx        *zmq.Context
	e           *engine
	sock        *zmq.Socket
	gen         uint64
	lastSend    time.Time
	lastRecv    time.Time
	lastHBReply time.Time
	backoff     time.Duration
	reconnectAt time.Time
	grace       time.Duration // added to the next connection's silence window
	merged      []int         // merge's indexes, reused
}

func (w *Worker) loop() (err error) {
	zctx := w.zctx
	if zctx == nil {
		if zctx, err = zmq.NewContext(); err != nil {
			return fmt.Errorf("gate: worker: zmq context: %w", err)
		}
		defer func() {
			zctx.SetRetryAfterEINTR(false)
			_ = zctx.Term()
		}()
	}
	e, err := newEngine(mailboxSize)
	if err != nil {
		return fmt.Errorf("gate: worker: %w", err)
	}
	l := &workerLoop{w: w, zctx: zctx, e: e, backoff: w.s.ReconnectBackoff, reconnectAt: time.Now()}
	w.out.Store(e.out)
	defer func() {
		l.closeSocket(false, 0)
		w.lifeStop()
		w.cancelAll() // handler ctxs are not children of w.life
		e.close()     // replies still queued are dropped: their connection is gone
	}()
	for {
		select {
		case <-w.closing:
			l.closeSocket(true, 100*time.Millisecond)
			return nil
		default:
		}
		now := time.Now()
		if w.isDraining() && w.inflightCount() == 0 && len(l.e.backlog) == 0 && l.e.out.Len() == 0 {
			l.closeSocket(true, time.Second)
			return nil
		}
		if l.sock == nil && !now.Before(l.reconnectAt) {
			if err := l.connect(now); err != nil {
				return err
			}
		}
		in, out, err := l.e.poll(l.timeout(now))
		if err != nil {
			return fmt.Errorf("gate: worker: poll: %w", err)
		}
		if out {
			l.flush()
		}
		// The whole batch of replies at once (at most mailboxSize); while
		// the socket refuses messages (backlog) they stay queued and
		// handlers wait for room.
		l.sendBatch(l.e.take())
		if in {
			l.receive()
		}
		l.tick(time.Now())
	}
}

// timeout is how long the loop may sleep.
func (l *workerLoop) timeout(now time.Time) time.Duration {
	if l.sock == nil {
		return l.reconnectAt.Sub(now)
	}
	hb := l.w.s.Heartbeat
	d := l.lastSend.Add(hb).Sub(now)
	if e := l.lastRecv.Add(hb * time.Duration(l.w.s.Liveness)).Sub(now); e < d {
		d = e
	}
	return d
}

func newRoutingID() []byte {
	id := make([]byte, 16)
	_, _ = crand.Read(id)
	if id[0] == 0 {
		id[0] = 1 // a leading 0 is reserved for ids libzmq generates
	}
	return id
}

func (l *workerLoop) connect(now time.Time) error {
	w := l.w
	sock, err := l.zctx.NewSocket(zmq.DEALER)
	if err != nil {
		return fmt.Errorf("gate: worker: socket: %w", err)
	}
	if err := zmqx.Setup(sock, w.s.HWM, 0, newRoutingID()); err != nil {
		sock.Close()
		return fmt.Errorf("gate: worker: socket options: %w", err)
	}
	if err := applyCurve(sock, w.s.Curve); err != nil { // security.go
		sock.Close()
		return fmt.Errorf("gate: worker: %w", err)
	}
	if err := sock.Connect(w.endpoint); err != nil {
		sock.Close()
		return fmt.Errorf("gate: worker: connect %s: %w", w.endpoint, err)
	}
	if err := l.e.attach(sock); err != nil {
		sock.Close()
		return fmt.Errorf("gate: worker: %w", err)
	}
	l.sock = sock
	l.gen++
	l.lastRecv, l.grace = now.Add(l.grace), 0
	l.send(wire.WorkerMessage{Command: wire.CmdReady, Service: w.svc.name, Description: w.svc.description, Capacity: w.s.MessageMax}.Frames())
	// Announce CmdCancel support, with a final reply for every cancelled
	// call (serveCall), CmdCredit support (worker_flow.go) and batched
	// stream items (sendBatch). 0.2.12
	// brokers ignore heartbeats with extra frames; plain heartbeats keep
	// them happy.
	// gaterpc/3 first: a gate broker that predates gaterpc/4 ignores the
	// second heartbeat and still relays credit.
	l.send(wire.WorkerMessage{Command: wire.CmdHeartbeat, Extra: [][]byte{[]byte(wire.GateCapabilityFlow)}}.Frames())
	l.send(wire.WorkerMessage{Command: wire.CmdHeartbeat, Extra: [][]byte{[]byte(wire.GateCapabilityBatch)}}.Frames())
	w.connects.Add(1)
	w.log.LogAttrs(context.Background(), slog.LevelInfo, "worker connected",
		slog.String("gaterpc.service", w.svc.name), slog.String("endpoint", w.endpoint), slog.Int("capacity", w.s.MessageMax))
	return nil
}

// closeSocket closes the connection, optionally sending DISCONNECT first,
// and cancels the calls in flight on it.
func (l *workerLoop) closeSocket(disconnect bool, linger time.Duration) {
	if l.sock == nil {
		return
	}
	if disconnect {
		l.flush()
		_ = l.e.write(wire.WorkerMessage{Command: wire.CmdDisconnect, Extra: [][]byte{byeFrame}}.Frames())
	}
	_ = l.sock.SetLinger(linger)
	l.sock.Close()
	l.sock = nil
	l.e.detach()
	l.w.reg.lost()
	l.w.cancelAll()
}

// reconnect drops the connection and schedules a new one with backoff.
// After a silent broker the new socket is made at once and the backoff
// lengthens its silence window instead, so that a socket is always there
// (its READY queued) to register as soon as a restarted broker is back.
func (l *workerLoop) reconnect(now time.Time, reason string) {
	l.closeSocket(false, 0)
	d := l.backoff/2 + rand.N(l.backoff/2+1)
	l.reconnectAt = now.Add(d)
	if reason == reasonSilent {
		l.reconnectAt, l.grace = now, d
	}
	l.backoff = min(l.backoff*2, l.w.s.ReconnectBackoffMax)
	l.w.log.LogAttrs(context.Background(), slog.LevelWarn, "worker lost broker, reconnecting",
		slog.String("gaterpc.service", l.w.svc.name), slog.String("reason", reason), slog.Duration("backoff", d))
}

const reasonSilent = "broker silent"

func (l *workerLoop) send(frames [][]byte) {
	if l.sock == nil {
		return
	}
	if len(l.e.backlog) > 0 {
		l.e.backlog = append(l.e.backlog, outMsg{frames: frames})
		return
	}
	if err := l.e.write(frames); err != nil {
		if isAgain(err) { // HWM reached
			l.e.backlog = append(l.e.backlog, outMsg{frames: frames})
			return
		}
		l.w.log.LogAttrs(context.Background(), slog.LevelWarn, "worker send failed", slog.String("error", err.Error()))
		return
	}
	l.lastSend = time.Now()
}

func (l *workerLoop) flush() {
	sent := 0
	defer func() {
		n := copy(l.e.backlog, l.e.backlog[sent:])
		clear(l.e.backlog[n:])
		l.e.backlog = l.e.backlog[:n]
	}()
	for _, m := range l.e.backlog {
		if err := l.e.write(m.frames); err != nil {
			if isAgain(err) {
				return
			}
			l.w.log.LogAttrs(context.Background(), slog.LevelWarn, "worker send failed", slog.String("error", err.Error()))
		}
		sent++
		l.lastSend = time.Now()
	}
}

// Batching of stream items (docs/flow-control.md §7): the loop sends the
// stream items of one call that were queued together as one batch
// (wire.StreamBatchBody) of at most the client's batch size and about
// batchBytes of items. Items batch only as they queue up while the loop
// is busy: a lone item goes out at once, so batching adds no latency.
const (
	batchBytes     = 64 << 10 // item bytes after which a batch is sent
	batchLookahead = 256      // queued messages searched for a call's next items
)

// sendBatch sends the messages taken from the queue, merging the
// batchable stream items of each call (outMsg.batch) into batches. A
// call's items keep their order, and none moves past another message of
// the same call (its end or error marker).
func (l *workerLoop) sendBatch(ms []outMsg) {
	for i := range ms {
		m := &ms[i]
		if m.frames == nil {
			continue // merged into an earlier batch
		}
		if m.batch > 1 {
			if frames := l.merge(ms, i); frames != nil {
				l.sendReply(m.gen, frames)
				continue
			}
		}
		l.sendReply(m.gen, m.frames)
	}
}

// merge collects the items of ms[i]'s call queued after it (up to the
// batch size, batchBytes and batchLookahead messages, and never past
// another message of the call) into one batch, marking the merged
// messages done. It returns nil when no other item is there.
func (l *workerLoop) merge(ms []outMsg, i int) [][]byte {
	m := &ms[i]
	first := m.frames[len(m.frames)-1]
	n, size := 1, len(first)
	l.merged = append(l.merged[:0], i)
	end := min(len(ms), i+1+batchLookahead)
	for j := i + 1; j < end && n < m.batch && size < batchBytes; j++ {
		o := &ms[j]
		if o.wc != m.wc || o.frames == nil {
			continue
		}
		if o.batch <= 1 {
			break // a marker of this call: the items stay before it
		}
		l.merged = append(l.merged, j)
		n++
		size += len(o.frames[len(o.frames)-1])
	}
	if n == 1 {
		return nil
	}
	items := make([]byte, 0, size)
	for _, j := range l.merged {
		f := ms[j].frames
		items = append(items, f[len(f)-1]...)
		if j != i {
			ms[j].frames = nil
		}
	}
	// The header frames of m (up to the stream tag), then the batch.
	head := m.frames[:len(m.frames)-2]
	frames := make([][]byte, 0, len(head)+3)
	return append(append(frames, head...), wire.StreamBatchBody(items)...)
}

// sendReply sends frames if the call's connection is still the current
// one; replies for a dropped connection are discarded.
func (l *workerLoop) sendReply(gen uint64, frames [][]byte) {
	if gen == l.gen {
		l.send(frames)
	}
}

func (l *workerLoop) receive() {
	for range maxWorkerRecv {
		if l.sock == nil {
			return
		}
		frames, err := l.e.recv()
		if err != nil {
			return
		}
		l.handle(frames)
	}
}

func (l *workerLoop) handle(frames [][]byte) {
	w := l.w
	m, err := wire.ParseWorkerMessage(frames)
	if err != nil {
		w.log.LogAttrs(context.Background(), slog.LevelDebug, "worker dropped malformed message", slog.String("error", err.Error()))
		return
	}
	now := time.Now()
	l.lastRecv = now
	l.backoff = w.s.ReconnectBackoff
	if m.Command != wire.CmdDisconnect {
		w.reg.heard() // wait.go
	}
	switch m.Command {
	case wire.CmdHeartbeat:
		// Answer like a 0.2.12 worker, at most a few times per interval so
		// that a peer echoing our heartbeats cannot start a ping-pong.
		if now.Sub(l.lastHBReply) >= w.s.Heartbeat/4 {
			l.lastHBReply = now
			l.send(wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames())
		}
	case wire.CmdDisconnect:
		l.reconnect(now, "broker sent DISCONNECT")
	case wire.CmdCancel:
		w.cancelCall(callKey(m.Client, m.RequestID))
	case wire.CmdCredit:
		if c, err := wire.ParseCredit(m.Body[0]); err == nil { // ParseWorkerMessage checked it
			w.credit(callKey(m.Client, m.RequestID), c)
		}
	case wire.CmdRequest:
		l.request(m, now)
	default:
		w.log.LogAttrs(context.Background(), slog.LevelDebug, "worker ignored command", slog.String("command", m.Command.String()))
	}
}

func (l *workerLoop) request(m wire.WorkerMessage, now time.Time) {
	w := l.w
	if w.isDraining() {
		l.reject(m, Errorf(Unavailable, "The %s worker is shutting down.", w.svc.name))
		return
	}
	c := &workCall{key: callKey(m.Client, m.RequestID), client: m.Client, rid: m.RequestID, body: m.Body, gen: l.gen, recvd: now}
	w.mu.Lock()
	if w.count >= w.s.MessageMax {
		w.mu.Unlock()
		l.reject(m, &Error{Code: ResourceExhausted, Class: "RuntimeError",
			Message: fmt.Sprintf("RuntimeError('Request count exceeds the maximum value(%d)')", w.s.MessageMax)})
		return
	}
	w.inflight[c.key] = c
	w.count++
	w.mu.Unlock()
	w.start(c)
}

// runnerIdle is how long a request goroutine waits for another request
// before it exits.
const runnerIdle = 10 * time.Second

// start hands c to an idle request goroutine, or starts one. Request
// goroutines outlive their call (by up to runnerIdle), so under load a
// call neither starts a goroutine nor grows a new stack through the
// middleware chain. There are never more of them than calls in flight
// (at most MessageMax).
func (w *Worker) start(c *workCall) {
	select {
	case w.work <- c:
	default:
		w.wg.Add(1)
		go w.runner(c)
	}
}

// runner serves c, then the calls start hands it, until it has been idle
// for runnerIdle or the worker stops.
func (w *Worker) runner(c *workCall) {
	defer w.wg.Done()
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		w.serveCall(c)
		idle.Reset(runnerIdle)
		select {
		case c = <-w.work:
		case <-idle.C:
			return
		case <-w.life.Done():
			return
		}
	}
}

// reject answers a request from the loop itself, without running
// middleware (over capacity, shutting down).
func (l *workerLoop) reject(m wire.WorkerMessage, e *Error) {
	class, repr, tb := exceptionTriple(e, "")
	b, err := l.w.cdc.EncodeException(class, repr, tb)
	if err != nil {
		return
	}
	l.send(wire.WorkerMessage{Command: wire.CmdReply, Client: m.Client, RequestID: m.RequestID, Body: wire.SingleBody(b)}.Frames())
}

func (l *workerLoop) tick(now time.Time) {
	if l.sock == nil {
		return
	}
	hb := l.w.s.Heartbeat
	if now.Sub(l.lastRecv) > hb*time.Duration(l.w.s.Liveness) {
		l.receive() // input that arrived while the loop was busy
	}
	if l.sock != nil && now.Sub(l.lastRecv) > hb*time.Duration(l.w.s.Liveness) {
		l.reconnect(now, reasonSilent)
		return
	}
	if now.Sub(l.lastSend) >= hb {
		l.send(wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames())
		l.lastSend = now // even if queued: do not retry every iteration
	}
}

func (w *Worker) inflightCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

func (w *Worker) cancelCall(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.inflight[key]; c != nil {
		c.stop()
	}
}

func (w *Worker) cancelAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.inflight {
		c.stop()
	}
}

// stop cancels c, or marks it so that serveCall cancels its ctx as soon as
// it makes it. Under w.mu.
func (c *workCall) stop() {
	c.canceled = true
	if c.cancel != nil {
		c.cancel()
	}
}

// callContext makes c's ctx on the request goroutine (not on the loop):
// cancelled by Gate.cancel, a lost connection or the worker closing
// (cancelCall, cancelAll), and ending at deadline when it is not zero. It
// is not derived from w.life, whose every child would take w.life's mutex
// twice per call: the loop cancels every call in flight when it stops.
func (w *Worker) callContext(c *workCall, deadline time.Time, flow *flowCtl) context.Context {
	var ctx context.Context
	var cancel context.CancelFunc
	if deadline.IsZero() {
		ctx, cancel = context.WithCancel(context.Background())
	} else {
		ctx, cancel = context.WithDeadline(context.Background(), deadline)
	}
	w.mu.Lock()
	c.ctx, c.cancel = ctx, cancel
	if flow != nil {
		c.flow = flow
		flow.credit = c.early // no grant can race: c.flow was nil until now
	}
	if c.canceled || w.life.Err() != nil {
		cancel()
	}
	w.mu.Unlock()
	return ctx
}

func (w *Worker) finish(c *workCall) {
	c.cancel()
	w.mu.Lock()
	if w.inflight[c.key] == c {
		delete(w.inflight, c.key)
	}
	w.count--
	n := w.count
	w.mu.Unlock()
	if n == 0 && w.isDraining() {
		w.wake()
	}
}

// baseWriter is the innermost ReplyWriter: it frames replies and hands
// them to the loop.
type baseWriter struct {
	w     *Worker
	c     *workCall
	batch int // the most stream items per message the loop may batch (batchFor), 0: none
	final bool
}

func (b *baseWriter) Send(ctx context.Context, r *Reply) error {
	if b.final {
		return fmt.Errorf("gate: %v reply after the final reply", r.Kind)
	}
	if held(r.Kind) {
		// Once the call is over (CANCEL, deadline, connection lost) its
		// producer stops at the next item or chunk, window or not.
		if err := b.c.ctx.Err(); err != nil {
			return flowWaitError(err)
		}
		if f := b.c.flow; f != nil && len(r.Body) > 0 {
			if err := f.acquire(ctx, b.c.ctx, len(r.Body[len(r.Body)-1])); err != nil {
				return err
			}
		}
	}
	if r.Kind.Final() || r.Kind == wire.ReplyUnknown {
		b.final = true
	}
	frames := wire.WorkerMessage{Command: wire.CmdReply, Client: b.c.client, RequestID: b.c.rid, Body: r.Body}.Frames()
	q := b.w.out.Load()
	if q == nil {
		return ErrClosed
	}
	m := outMsg{gen: b.c.gen, frames: frames}
	if b.batch > 1 && r.Kind == ReplyStreamItem && len(r.Body) == 2 {
		m.wc, m.batch = b.c, b.batch
	}
	if err := q.PushWait(b.w.life, m); err != nil {
		return ErrClosed
	}
	return nil
}

// parsedBody is the decoded request body, computed once per request.
type parsedBody struct {
	fn     string
	args   codec.RawArgs
	kwargs codec.RawKwargs
	err    error
}

// callState is what serveCall allocates per call, in one piece.
type callState struct {
	req    Request
	parsed parsedBody
	bw     baseWriter
}

// silentError marks an error the worker must not answer (Settings.Secure).
type silentError struct{ error }

func (e silentError) Unwrap() error { return e.error }

func (w *Worker) serveCall(c *workCall) {
	base, meta, err := wire.DecodeRequestID(c.rid)
	if err != nil {
		base, meta = c.rid, wire.RequestMeta{}
	}
	st := &callState{req: Request{Service: w.svc.name, ID: base, Metadata: meta.MD, Peer: c.client, Body: c.body}}
	req, p, bw := &st.req, &st.parsed, &st.bw
	if meta.Budget > 0 {
		req.Deadline = c.recvd.Add(meta.Budget)
	}
	var flow *flowCtl
	batch := 0
	env := w.env
	if meta.MD != nil {
		flow = flowFor(meta.MD)
		batch = batchFor(meta.MD)
		if n := chunkFor(meta.MD); n > 0 {
			e := *w.env
			e.chunk = n
			env = &e
		}
	}
	ctx := w.callContext(c, req.Deadline, flow)
	defer w.finish(c)
	req.setRole(RoleWorker)
	p.fn, p.args, p.kwargs, p.err = w.cdc.DecodeRequestBody(c.body)
	req.Method = p.fn
	req.parsed, req.env = p, env
	// SendResult and SendError get only the ctx and the writer: the env
	// rides in the ctx too (with a ctx built from scratch they fall back
	// to the default settings).
	ctx = context.WithValue(ctx, replyEnvKey{}, env)
	*bw = baseWriter{w: w, c: c, batch: batch}
	err = w.handler.ServeRPC(ctx, req, bw)
	if bw.final || errors.As(err, new(silentError)) {
		return
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		// Cancelled: a final reply still tells the broker the call is
		// over, so that it keeps the call's capacity until then
		// (wire.GateCapabilityAck); the broker drops the reply itself.
		err = Errorf(Canceled, "call cancelled")
	}
	// A middleware returned without a final reply.
	r := &replier{w: bw, cdc: env.cdc, s: &w.s, chunk: env.chunk}
	if err != nil {
		_ = r.exception(ctx, err)
	} else {
		_ = r.result(ctx, nil)
	}
}

// dispatch is the innermost handler: the user's method.
func (w *Worker) dispatch(ctx context.Context, req *Request, rw ReplyWriter) error {
	p := req.parsed
	if p == nil { // a Request the middleware built from scratch
		p = &parsedBody{}
		p.fn, p.args, p.kwargs, p.err = w.cdc.DecodeRequestBody(req.Body)
	}
	env := req.env
	if env == nil {
		env = w.env
	}
	r := &replier{w: rw, cdc: env.cdc, s: &w.s, chunk: env.chunk}
	if p.err != nil {
		err := typeErrorf("malformed request: %v", p.err)
		if w.s.Secure {
			return silentError{err}
		}
		_ = r.exception(ctx, err)
		return err
	}
	m := w.svc.lookup(p.fn)
	if m == nil {
		err := Errorf(Unimplemented, "Function not found: %s", p.fn)
		if w.s.Secure {
			return silentError{err}
		}
		_ = r.exception(ctx, err)
		return err
	}
	return m.serve(ctx, w, req, r, p)
}

func (m *method) serve(ctx context.Context, w *Worker, req *Request, r *replier, p *parsedBody) error {
	exec := m.exec
	if exec == nil {
		exec = w.pool
	}
	kind := execKind(exec)
	r.fn = m.fn
	in, err := m.fn.bind(ctx, w.cdc, p.args, p.kwargs)
	if err != nil {
		_ = r.exception(ctx, err)
		return err
	}
	if pp, ok := exec.(*ProcessPool); ok {
		w.waiting(kind, 1)
		res, err := pp.invoke(ctx, m.procName, req.Body, func() { w.waiting(kind, -1) })
		if err != nil {
			_ = r.exception(ctx, err)
			return err
		}
		return r.result(ctx, res)
	}
	var sw *StreamWriter
	if m.fn.swIdx >= 0 {
		sw = &StreamWriter{r: r, ctx: ctx}
		in[m.fn.swIdx] = reflect.ValueOf(sw)
	}
	ran := false
	w.waiting(kind, 1)
	err = exec.execute(ctx, func(ctx context.Context) error {
		ran = true
		w.waiting(kind, -1)
		res, err := m.fn.call(in)
		if sw != nil {
			return sw.finish(err)
		}
		if err != nil {
			_ = r.exception(ctx, err)
			return err
		}
		return r.result(ctx, res)
	})
	if !ran {
		w.waiting(kind, -1)
		if err != nil { // timed out or cancelled waiting for a slot
			_ = r.exception(ctx, err)
		}
	}
	return err
}
