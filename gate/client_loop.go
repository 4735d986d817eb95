package gate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// maxRecvBatch bounds how many messages the loop reads from the DEALER
// before it serves its queue again.
const maxRecvBatch = 512

// clientLoop is the client role on the connection engine: the state owned
// by the client's loop goroutine (the DEALER, through e, and the liveness
// clock). Nothing else touches it; other goroutines push onto e.out.
type clientLoop struct {
	c    *Client
	e    *engine
	sock *zmq.Socket // nil while waiting to reconnect
	mon  *zmq.Socket // PAIR end of sock's monitor (disconnects); nil if none

	lastRecv    time.Time // last valid message from the broker
	lastSend    time.Time // last message sent
	lastPing    time.Time // last keepalive sent
	reconnectAt time.Time // when sock == nil: when to reconnect
	backoff     time.Duration
	heard       bool      // a valid message arrived on this connection
	outbox      []outMsg  // queued while disconnected
	items       []inbound // handleBatch's items, reused
	closed      bool
}

// run is the loop goroutine. ready receives the setup error (nil on
// success) exactly once.
func (l *clientLoop) run(ready chan<- error) {
	c := l.c
	defer close(c.done)
	l.backoff = c.set.ReconnectBackoff
	if err := l.connect(time.Now()); err != nil {
		l.e.close()
		ready <- err
		return
	}
	ready <- nil

	for !c.isClosing() {
		now := time.Now()
		in, _, err := l.e.poll(l.nextTick(now).Sub(now))
		if err != nil {
			if errors.Is(err, zmq.ETERM) || c.isClosing() {
				break
			}
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			c.log.LogAttrs(context.Background(), slog.LevelError, "gate client: poll failed", slog.String("error", err.Error()))
			break
		}
		for _, m := range l.e.take() {
			l.send(m)
		}
		if in {
			l.readAll()
		}
		if l.e.monitorReady() {
			l.readMonitor(time.Now())
		}
		l.tick(time.Now())
	}
	l.shutdown()
}

// connect creates a fresh DEALER with a fresh routing id and sends
// Gate.get_services, as the Python client does on connect.
func (l *clientLoop) connect(now time.Time) error {
	c := l.c
	s, err := c.zctx.NewSocket(zmq.DEALER)
	if err != nil {
		return fmt.Errorf("gate: client socket: %w", err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	id[0] |= 0x80 // never a leading 0x00 (reserved by libzmq)
	if err := zmqx.Setup(s, c.set.HWM, 0, id); err != nil {
		s.Close()
		return fmt.Errorf("gate: client socket setup: %w", err)
	}
	if err := applyCurve(s, c.set.Curve); err != nil { // security.go
		s.Close()
		return fmt.Errorf("gate: client socket: %w", err)
	}
	if err := s.Connect(c.endpoint); err != nil {
		s.Close()
		return fmt.Errorf("%w: connect %q: %v", ErrInvalidOption, c.endpoint, err)
	}
	if err := l.e.attach(s); err != nil {
		s.Close()
		return fmt.Errorf("gate: client socket: %w", err)
	}
	l.sock = s
	l.watch(s)
	l.lastRecv, l.lastSend, l.lastPing = now, now, now
	l.heard = false
	c.connects.Add(1)
	c.log.LogAttrs(context.Background(), slog.LevelDebug, "gate client: connecting", slog.String("endpoint", c.endpoint))
	l.write(outMsg{frames: c.internalFrames("get_services", nil)})
	out := l.outbox
	l.outbox = nil
	for _, m := range out {
		l.send(m)
	}
	return nil
}

// send writes m, or queues it while disconnected. Loop goroutine only; it
// never blocks.
func (l *clientLoop) send(m outMsg) {
	if l.closed {
		if m.c != nil {
			m.c.fail(ErrClosed)
		}
		return
	}
	if m.c != nil && l.c.pending.get(m.c.id) != m.c {
		return // abandoned before it was sent
	}
	if l.sock == nil {
		if len(l.outbox) >= 2*l.c.set.MessageMax {
			if m.c != nil {
				l.c.pending.remove(m.c)
				m.c.fail(Errorf(Unavailable, "not connected and %d messages queued", len(l.outbox)))
			}
			return
		}
		l.outbox = append(l.outbox, m)
		return
	}
	l.write(m)
}

func (l *clientLoop) write(m outMsg) {
	err := l.e.write(m.frames)
	if err != nil {
		if m.c != nil {
			l.c.pending.remove(m.c)
			if isAgain(err) {
				m.c.fail(Errorf(ResourceExhausted, "send queue full (HWM %d)", l.c.set.HWM))
			} else {
				m.c.fail(fmt.Errorf("%w: send: %v", ErrBrokerLost, err))
			}
		}
		return
	}
	l.lastSend = time.Now()
}

// readAll reads every message available on the DEALER, up to a batch.
func (l *clientLoop) readAll() {
	for range maxRecvBatch {
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

// handle routes one reply to its call.
func (l *clientLoop) handle(frames [][]byte) {
	c := l.c
	rep, err := wire.ParseClientReply(frames)
	if err != nil {
		c.log.LogAttrs(context.Background(), slog.LevelDebug, "gate client: dropped malformed reply", slog.String("error", err.Error()))
		return
	}
	l.lastRecv = time.Now()
	if !l.heard {
		l.heard = true
		l.backoff = c.set.ReconnectBackoff
	}
	cl := c.pending.get(rep.RequestID)
	if cl == nil {
		return // keepalive, get_services, cancel ack, or a call given up
	}
	kind, payload := wire.ClassifyReply(rep.Body)
	if kind == wire.ReplyUnknown {
		return // ignored, like the Python client
	}
	// A final reply leaves the table before the caller can see it, so a
	// returned call is never still counted as pending.
	final := kind.Final()
	if final {
		c.pending.remove(cl)
	}
	if kind == wire.ReplyStreamItem && wire.IsStreamBatch(rep.Body) {
		l.handleBatch(cl, rep.Body)
		return
	}
	if !cl.push(inbound{kind: kind, payload: payload, body: rep.Body}) && !final {
		// The caller's buffer overflowed: stop the rest at the source.
		c.pending.remove(cl)
		l.send(outMsg{frames: c.cancelFrames(cl.id)})
	}
}

// handleBatch hands the items of a batch (wire.StreamBatchBody) to cl,
// each with the body of a single item message, under one lock. A batch
// that does not split into msgpack values fails the call.
func (l *clientLoop) handleBatch(cl *call, body [][]byte) {
	l.items = l.items[:0]
	for rest := body[2]; len(rest) > 0; {
		item, next, err := codec.SplitValue(rest)
		if err != nil {
			cl.fail(Errorf(Internal, "malformed stream batch: %v", err))
			l.c.pending.remove(cl)
			l.send(outMsg{frames: l.c.cancelFrames(cl.id)})
			return
		}
		l.items = append(l.items, inbound{kind: wire.ReplyStreamItem, payload: item})
		rest = next
	}
	bodies := make([][]byte, 2*len(l.items)) // one allocation for every item's body
	for i := range l.items {
		b := bodies[2*i : 2*i+2 : 2*i+2]
		b[0], b[1] = body[0], l.items[i].payload
		l.items[i].body = b
	}
	ok := cl.pushAll(l.items)
	clear(l.items)
	if !ok {
		l.c.pending.remove(cl)
		l.send(outMsg{frames: l.c.cancelFrames(cl.id)})
	}
}

// nextTick is when tick has something to do.
func (l *clientLoop) nextTick(now time.Time) time.Time {
	set := l.c.set
	if l.sock == nil {
		return l.reconnectAt
	}
	next := l.lastSend.Add(set.Heartbeat)
	if t := later(l.lastRecv, l.lastPing).Add(set.Heartbeat); t.Before(next) {
		next = t
	}
	if t := l.lastRecv.Add(set.Heartbeat * time.Duration(set.Liveness)); t.Before(next) {
		next = t
	}
	if next.Before(now) {
		return now
	}
	return next
}

// tick sends keepalives, detects broker loss and reconnects.
func (l *clientLoop) tick(now time.Time) {
	c := l.c
	set := c.set
	if l.sock == nil {
		if !now.Before(l.reconnectAt) && !c.isClosing() {
			if err := l.connect(now); err != nil {
				c.log.LogAttrs(context.Background(), slog.LevelWarn, "gate client: reconnect failed", slog.String("error", err.Error()))
				l.reconnectAt = now.Add(l.nextBackoff())
			}
		}
		return
	}
	if now.Sub(l.lastRecv) >= set.Heartbeat*time.Duration(set.Liveness) {
		l.lost(now)
		return
	}
	// Keepalive when nothing was sent for a heartbeat (Python), and also
	// when nothing was heard for one, so that a client busy sending to slow
	// workers still proves the broker alive.
	if now.Sub(l.lastSend) >= set.Heartbeat || (now.Sub(l.lastRecv) >= set.Heartbeat && now.Sub(l.lastPing) >= set.Heartbeat) {
		l.lastPing = now
		l.write(outMsg{frames: c.internalFrames("keepalive", []any{[]byte("heartbeat")})})
	}
}

// lost handles a silent broker: every pending call fails at once with
// ErrBrokerLost, the DEALER is closed, and a new one is made at once whose
// silence window is longer by a backoff.
func (l *clientLoop) lost(now time.Time) {
	c := l.c
	n := c.pending.failAll(fmt.Errorf("%w: no message for %v", ErrBrokerLost, now.Sub(l.lastRecv).Round(time.Millisecond)), false)
	l.outbox = nil
	l.closeSocket()
	wait := l.nextBackoff()
	l.reconnectAt = now.Add(wait)
	// Reconnect at once, the backoff lengthening the new socket's silence
	// window instead: a socket is always there to notice a restarted broker.
	if !c.isClosing() && l.connect(now) == nil {
		l.lastRecv = now.Add(wait)
	}
	c.losses.Add(1)
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "gate client: broker lost",
		slog.String("endpoint", c.endpoint), slog.Int("failed_calls", n), slog.Duration("reconnect_in", wait))
}

// nextBackoff returns the current backoff with jitter and doubles it.
func (l *clientLoop) nextBackoff() time.Duration {
	set := l.c.set
	b := l.backoff
	l.backoff = min(2*l.backoff, set.ReconnectBackoffMax)
	if b <= 0 {
		return 0
	}
	return b/2 + mrand.N(b/2+1)
}

func (l *clientLoop) closeSocket() {
	if l.sock != nil {
		_ = l.sock.Close()
		l.sock = nil
	}
	l.closeMonitor()
	l.e.detach()
}

// watch monitors s for dropped connections (ZMQ_EVENT_DISCONNECTED): a
// broker that dies or restarts takes the calls in flight on it along, and
// the calls learn it at once rather than at the heartbeat liveness
// timeout. Without a monitor (an error here) only the liveness timeout
// detects a lost broker.
func (l *clientLoop) watch(s *zmq.Socket) {
	ep := zmqx.UniqueInproc("gate-client-monitor")
	err := s.Monitor(ep, zmq.EVENT_DISCONNECTED)
	var mon *zmq.Socket
	if err == nil {
		mon, err = l.c.zctx.NewSocket(zmq.PAIR)
	}
	if err == nil {
		_ = mon.SetLinger(0)
		if err = mon.Connect(ep); err == nil {
			err = l.e.watch(mon)
		}
		if err != nil {
			mon.Close()
		}
	}
	if err != nil {
		l.c.log.LogAttrs(context.Background(), slog.LevelDebug, "gate client: no connection monitor", slog.String("error", err.Error()))
		return
	}
	l.mon = mon
}

// readMonitor handles the monitor's events: a dropped connection fails
// every pending call with ErrBrokerLost (the broker that had them is gone
// or will not answer them on a new connection); libzmq reconnects by
// itself.
func (l *clientLoop) readMonitor(now time.Time) {
	c := l.c
	for range 64 {
		ev, addr, _, err := l.mon.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return
		}
		if ev != zmq.EVENT_DISCONNECTED {
			continue
		}
		n := c.pending.failAll(fmt.Errorf("%w: connection to %s dropped", ErrBrokerLost, addr), false)
		l.heard = false
		if n > 0 {
			c.losses.Add(1)
			c.log.LogAttrs(context.Background(), slog.LevelWarn, "gate client: connection to the broker dropped",
				slog.String("endpoint", c.endpoint), slog.Int("failed_calls", n))
		}
	}
}

func (l *clientLoop) closeMonitor() {
	if l.mon != nil {
		_ = l.mon.Close()
		l.mon = nil
	}
}

// shutdown runs when the client closes: queued calls fail, every pending
// call fails with ErrClosed, the socket closes, and an owned zmq context is
// terminated.
func (l *clientLoop) shutdown() {
	c := l.c
	l.closed = true
	if l.sock != nil {
		_ = l.sock.Close()
		l.sock = nil
	}
	l.closeMonitor()
	for _, m := range l.e.close() {
		l.send(m) // fails m.c with ErrClosed
	}
	c.pending.failAll(ErrClosed, true)
	if c.ownZctx {
		c.zctx.SetRetryAfterEINTR(false)
		_ = c.zctx.Term()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
