package gate

import (
	"fmt"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/zmqx"
)

// outMsg is a message queued for a DEALER by another goroutine.
type outMsg struct {
	frames [][]byte
	c      *call  // client: the call it belongs to (nil for keepalives, cancels); a send failure fails it
	gen    uint64 // worker: the connection it was made for; dropped on a newer one
	// worker: a stream item the loop may batch with the same call's
	// (wc) next items, at most batch per message (workerLoop.sendBatch).
	wc    *workCall
	batch int
}

// engine is the connection engine shared by the client and the worker:
// the socket half of a DEALER connection, owned by the role's loop
// goroutine. Other goroutines hand it messages through out, a
// [zmqx.Queue] whose eventfd is polled next to the socket with one
// zmq_poll: a burst of calls or replies costs at most one wake-up write,
// and the loop sends the whole batch per wake. Messages the socket
// refuses (EAGAIN at the high-water mark) wait in backlog, in order,
// while the loop polls for POLLOUT; the queue then fills up and its
// producers wait, which is the back-pressure.
//
// The roles (clientLoop, workerLoop) keep their protocol state and decide
// what a message means; the engine moves bytes.
type engine struct {
	out     *zmqx.Queue[outMsg] // any goroutine → loop
	sock    *zmq.Socket         // nil while disconnected
	poller  zmqx.Poller
	batch   []outMsg // last batch taken from out, reused
	backlog []outMsg // refused by the socket (EAGAIN), sent first
}

const (
	wakeItem = 0 // poller item of out's eventfd
	sockItem = 1 // poller item of sock
	monItem  = 2 // poller item of a socket monitor (watch), if any
)

func newEngine(capacity int) (*engine, error) {
	q, err := zmqx.NewQueue[outMsg](capacity)
	if err != nil {
		return nil, err
	}
	e := &engine{out: q}
	e.detach()
	return e, nil
}

// attach makes s the engine's socket: the loop polls it for input next to
// the wake fd.
func (e *engine) attach(s *zmq.Socket) error {
	e.poller.Reset()
	if _, err := e.poller.AddFd(e.out.Fd()); err != nil {
		return err
	}
	if _, err := e.poller.AddSocket(s, zmq.POLLIN); err != nil {
		return err
	}
	e.sock = s
	return nil
}

// watch polls mon, the PAIR end of sock's monitor, next to the socket
// (after attach); monitorReady reports its events.
func (e *engine) watch(mon *zmq.Socket) error {
	i, err := e.poller.AddSocket(mon, zmq.POLLIN)
	if err == nil && i != monItem {
		err = fmt.Errorf("gate: monitor is poller item %d", i)
	}
	return err
}

// monitorReady reports whether the watched monitor has events to read
// after poll.
func (e *engine) monitorReady() bool {
	return e.poller.Len() > monItem && e.poller.Ready(monItem)&zmq.POLLIN != 0
}

// detach forgets the socket (closed by the role) and its backlog.
func (e *engine) detach() {
	e.sock = nil
	clear(e.backlog)
	e.backlog = e.backlog[:0]
	e.poller.Reset()
	_, _ = e.poller.AddFd(e.out.Fd())
}

// poll blocks until a message is queued, the socket has input (or room,
// while a backlog waits), or timeout. It reports what is ready.
func (e *engine) poll(timeout time.Duration) (in, out bool, err error) {
	pending := e.out.Sleep()
	if pending && len(e.backlog) == 0 {
		timeout = 0 // a batch is waiting and the socket can take it
	}
	if e.sock != nil {
		ev := zmq.POLLIN
		if len(e.backlog) > 0 {
			ev |= zmq.POLLOUT
		}
		e.poller.SetEvents(sockItem, ev)
	}
	_, err = e.poller.Poll(timeout)
	e.out.Awake(err == nil && e.poller.Ready(wakeItem) != 0)
	if err != nil || e.sock == nil {
		return false, false, err
	}
	ev := e.poller.Ready(sockItem)
	return ev&zmq.POLLIN != 0, ev&zmq.POLLOUT != 0, nil
}

// take returns the queued messages, unless the socket still refuses
// earlier ones: then they stay queued (and their producers wait).
func (e *engine) take() []outMsg {
	if len(e.backlog) > 0 {
		return nil
	}
	e.batch = e.out.Take(e.batch)
	return e.batch
}

// write sends frames without blocking (EAGAIN at the high-water mark).
func (e *engine) write(frames [][]byte) error { return zmqx.SendMessage(e.sock, frames) }

// isAgain reports whether err is EAGAIN (the socket's high-water mark).
func isAgain(err error) bool { return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) }

// recv reads one message without blocking.
func (e *engine) recv() ([][]byte, error) { return zmqx.RecvMessage(e.sock) }

// close releases the queue; the values still queued are returned for the
// role to fail. The role closes its socket first.
func (e *engine) close() []outMsg {
	e.out.Close()
	e.sock = nil
	left := append(e.backlog, e.out.Take(e.batch)...)
	e.backlog, e.batch = nil, nil
	return left
}
