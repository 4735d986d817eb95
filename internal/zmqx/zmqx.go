// Package zmqx holds the socket-owner machinery shared by the broker, the
// client and the worker: a mailbox through which other goroutines hand
// work to the one goroutine that owns a component's sockets, socket setup
// helpers, Poll, and whole-message I/O (RecvMessage, SendMessage) that
// crosses into libzmq once or twice per message instead of several times
// per frame as pebbe/zmq4's calls do.
//
// pebbe/zmq4 sockets are not safe for concurrent use. Each component has
// one loop goroutine that creates, polls, reads, writes and closes its
// sockets; everything else talks to it through a Mailbox:
//
//	mb, _ := zmqx.NewMailbox(zctx, 1024)   // in the loop goroutine
//	poller.Add(mb.Socket(), zmq.POLLIN)
//	...
//	// any goroutine:
//	mb.Post(ctx, func() { /* runs on the loop */ })
//	// loop, when mb.Socket() is readable:
//	mb.Drain()
package zmqx

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// ErrClosed is returned by Post after the mailbox is closed.
var ErrClosed = errors.New("zmqx: mailbox closed")

// ErrFull is returned by TryPost when the mailbox is full.
var ErrFull = errors.New("zmqx: mailbox full")

var seq atomic.Uint64

// UniqueInproc returns a fresh inproc endpoint with the given prefix.
func UniqueInproc(prefix string) string {
	return fmt.Sprintf("inproc://%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// Mailbox carries closures from any goroutine to a socket-owning loop.
// Post and TryPost are safe for concurrent use; Socket, Drain and Close
// belong to the loop goroutine.
type Mailbox struct {
	ch     chan func()
	wake   chan struct{}
	closed chan struct{}
	once   sync.Once
	done   chan struct{} // forwarder exited

	recv *zmq.Socket // loop-owned
	send *zmq.Socket // forwarder-owned
}

// NewMailbox creates a mailbox holding up to capacity pending closures.
// Call it from the loop goroutine; zctx must outlive the mailbox.
func NewMailbox(zctx *zmq.Context, capacity int) (*Mailbox, error) {
	if capacity < 1 {
		capacity = 1
	}
	ep := UniqueInproc("mailbox")
	recv, err := zctx.NewSocket(zmq.PAIR)
	if err != nil {
		return nil, fmt.Errorf("zmqx: mailbox socket: %w", err)
	}
	if err := recv.Bind(ep); err != nil {
		recv.Close()
		return nil, fmt.Errorf("zmqx: mailbox bind: %w", err)
	}
	send, err := zctx.NewSocket(zmq.PAIR)
	if err == nil {
		err = send.Connect(ep)
	}
	if err != nil {
		recv.Close()
		if send != nil {
			send.Close()
		}
		return nil, fmt.Errorf("zmqx: mailbox connect: %w", err)
	}
	_ = recv.SetLinger(0)
	_ = send.SetLinger(0)
	m := &Mailbox{
		ch:     make(chan func(), capacity),
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		recv:   recv,
		send:   send,
	}
	go m.forward()
	return m, nil
}

// forward owns the sending PAIR: each wake becomes one token.
func (m *Mailbox) forward() {
	defer close(m.done)
	defer m.send.Close()
	for {
		select {
		case <-m.closed:
			return
		case <-m.wake:
			// A full pipe (HWM) means the loop has tokens pending already.
			_, _ = m.send.SendBytes([]byte{1}, zmq.DONTWAIT)
		}
	}
}

func (m *Mailbox) nudge() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Post queues fn to run on the loop, waiting for room until ctx is done.
func (m *Mailbox) Post(ctx context.Context, fn func()) error {
	select {
	case <-m.closed:
		return ErrClosed
	default:
	}
	select {
	case m.ch <- fn:
		m.nudge()
		return nil
	case <-m.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TryPost queues fn without waiting.
func (m *Mailbox) TryPost(fn func()) error {
	select {
	case <-m.closed:
		return ErrClosed
	default:
	}
	select {
	case m.ch <- fn:
		m.nudge()
		return nil
	default:
		return ErrFull
	}
}

// Closed is closed once Close has been called.
func (m *Mailbox) Closed() <-chan struct{} { return m.closed }

// Socket is the loop-owned socket to poll for POLLIN.
func (m *Mailbox) Socket() *zmq.Socket { return m.recv }

// Drain reads pending wake tokens and runs every queued closure without
// blocking. Loop goroutine only. It returns the number of closures run.
func (m *Mailbox) Drain() int {
	for {
		if _, err := m.recv.RecvBytes(zmq.DONTWAIT); err != nil {
			break
		}
	}
	n := 0
	for {
		select {
		case fn := <-m.ch:
			fn()
			n++
		default:
			// A Post that raced with the token read re-nudges, so nothing
			// is stranded.
			return n
		}
	}
}

// Close stops the forwarder and closes the loop's socket. Queued closures
// that were never drained are dropped; callers of Post that need an answer
// must also watch their own ctx or Closed. Loop goroutine only; idempotent.
func (m *Mailbox) Close() {
	m.once.Do(func() {
		close(m.closed)
		<-m.done
		m.recv.Close()
	})
}

// DrainAfterClose runs closures still queued after Close (so posters
// waiting on a reply channel are answered). Loop goroutine only.
func (m *Mailbox) DrainAfterClose() {
	for {
		select {
		case fn := <-m.ch:
			fn()
		default:
			return
		}
	}
}

// Setup applies the options every gate socket gets: linger, high-water
// marks (0.2.12 uses 3000), max message size (0 = unlimited), and an
// optional routing id.
func Setup(s *zmq.Socket, hwm int, maxMsgSize int64, id []byte) error {
	if err := s.SetLinger(0); err != nil {
		return err
	}
	if hwm > 0 {
		if err := s.SetSndhwm(hwm); err != nil {
			return err
		}
		if err := s.SetRcvhwm(hwm); err != nil {
			return err
		}
	}
	if maxMsgSize > 0 {
		if err := s.SetMaxmsgsize(maxMsgSize); err != nil {
			return err
		}
	}
	if len(id) > 0 {
		if err := s.SetIdentity(string(id)); err != nil {
			return err
		}
	}
	return nil
}

// PollTimeout clamps d to >= 0: zmq4 treats a negative poll timeout as
// "wait forever", which would hang a loop whose deadline already passed.
func PollTimeout(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// Poll waits up to timeout (clamped by PollTimeout) for events on p's
// sockets, like p.Poll, but first yields the processor.
//
// A socket loop spends most of its life blocked in zmq_poll, a cgo call,
// and Go keeps the loop's P (processor) attached to it while it blocks:
// the P is only retaken by the runtime's monitor thread after it notices
// (tens of microseconds, or milliseconds when the process was idle). The
// goroutines the loop has just made runnable (callers whose replies
// arrived, handlers of new requests) sit on that P's run queue meanwhile,
// and with a few loops per process and GOMAXPROCS=2 every P can be stuck
// that way. Yielding first lets them run before the loop blocks.
// Measured with go test -bench BenchmarkCallParallel ./telemetry/e2e:
// about 1.3× the calls/s of a plain p.Poll.
func Poll(p *zmq.Poller, timeout time.Duration) ([]zmq.Polled, error) {
	runtime.Gosched()
	return p.Poll(PollTimeout(timeout))
}
