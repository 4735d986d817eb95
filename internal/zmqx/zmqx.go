// Package zmqx holds the socket-owner machinery shared by the broker, the
// client and the worker: the queues through which other goroutines hand
// work to the one goroutine that owns a component's sockets, a Poller over
// sockets and raw descriptors, socket setup helpers, and whole-message I/O
// (RecvMessage, SendMessage) that crosses into libzmq once or twice per
// message instead of several times per frame as pebbe/zmq4's calls do.
// A [Receiver] and a [Sender] do the same with storage their goroutine
// reuses (no allocation per message), for a loop that copies only what
// it keeps.
//
// pebbe/zmq4 sockets are not safe for concurrent use. Each component has
// one loop goroutine that creates, polls, reads, writes and closes its
// sockets; everything else talks to it through a [Queue] (typed values,
// woken through an eventfd polled next to the sockets by a [Poller]; at
// most one write(2) per batch) or a [Mailbox] (closures, for a loop that
// polls with zmq4's Poller, woken by a token on an inproc PAIR):
//
//	q, _ := zmqx.NewQueue[msg](1024)   // loop
//	var p zmqx.Poller
//	p.AddFd(q.Fd()); p.AddSocket(sock, zmq.POLLIN)
//	...
//	q.PushWait(ctx, m)                  // any goroutine
//	...
//	pending := q.Sleep()                // loop: see Queue
//	p.Poll(timeout)                     // 0 if pending
//	q.Awake(p.Ready(0) != 0)
//	batch = q.Take(batch)
package zmqx

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

// Mailbox carries closures from any goroutine to a socket-owning loop that
// polls with pebbe/zmq4's Poller (which takes sockets only, so the wake-up
// is a token on an inproc PAIR). It is a [Queue] of closures: a producer
// appends under a mutex and sends a token only when the loop is not
// already signalled, so a burst of posts costs one token; there is no
// forwarder goroutine. A loop that can poll raw descriptors (with
// [Poller]) should use a Queue with its eventfd instead.
//
// Post and TryPost are safe for concurrent use; Socket, Drain and Close
// belong to the loop goroutine.
type Mailbox struct {
	q     *Queue[func()]
	recv  *zmq.Socket // loop-owned
	batch []func()
}

// pairSignal sends wake tokens on the sending PAIR. It is only used under
// the queue's mutex, which also orders its use across goroutines (a zmq
// socket may move between threads behind a full memory barrier).
type pairSignal struct{ send *zmq.Socket }

var token = []byte{1}

func (p *pairSignal) signal() {
	// A full pipe (HWM) means the loop has tokens pending already.
	_, _ = p.send.SendBytes(token, zmq.DONTWAIT)
}

func (p *pairSignal) close() { _ = p.send.Close() }

// NewMailbox creates a mailbox holding up to capacity pending closures.
// Call it from the loop goroutine; zctx must outlive the mailbox.
func NewMailbox(zctx *zmq.Context, capacity int) (*Mailbox, error) {
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
	q := newQueue[func()](capacity, &pairSignal{send: send})
	q.signaled.Store(false) // Drain clears it: the loop polls from the start
	return &Mailbox{q: q, recv: recv}, nil
}

// Post queues fn to run on the loop, waiting for room until ctx is done.
func (m *Mailbox) Post(ctx context.Context, fn func()) error { return m.q.PushWait(ctx, fn) }

// TryPost queues fn without waiting.
func (m *Mailbox) TryPost(fn func()) error { return m.q.Push(fn) }

// Closed is closed once Close has been called.
func (m *Mailbox) Closed() <-chan struct{} { return m.q.Closed() }

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
	// From here a Post sends a token again: nothing is stranded.
	m.q.signaled.Store(false)
	m.batch = m.q.Take(m.batch)
	for _, fn := range m.batch {
		fn()
	}
	return len(m.batch)
}

// Close refuses further posts and closes the mailbox's sockets. Queued
// closures that were never drained stay queued for DrainAfterClose;
// callers of Post that need an answer must also watch their own ctx or
// Closed. Loop goroutine only; idempotent.
func (m *Mailbox) Close() {
	select {
	case <-m.q.Closed():
		return
	default:
	}
	m.q.Close()
	m.recv.Close()
}

// DrainAfterClose runs closures still queued after Close (so posters
// waiting on a reply channel are answered). Loop goroutine only.
func (m *Mailbox) DrainAfterClose() {
	for {
		m.batch = m.q.Take(m.batch)
		if len(m.batch) == 0 {
			return
		}
		for _, fn := range m.batch {
			fn()
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
