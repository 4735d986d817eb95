package zmqx

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

// gate_poll is zmq_poll over items, retried on EINTR. It returns the
// number of ready items, or -1 with *err set.
static int gate_poll(zmq_pollitem_t *items, int n, long timeout, int *err) {
	int rc;
	do {
		rc = zmq_poll(items, n, timeout);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		*err = errno;
	}
	return rc;
}

// gate_wakefd_open returns a non-blocking file descriptor pair for
// wake-ups: an eventfd (fds[0] == fds[1]) on Linux, a pipe elsewhere.
static int gate_wakefd_open(int *fds) {
#ifdef __linux__
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	fds[0] = fds[1] = fd;
	return 0;
#else
	if (pipe(fds) < 0) {
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	return 0;
#endif
}

// gate_wakefd_signal makes the read end readable (one write(2)).
static void gate_wakefd_signal(int fd) {
	unsigned long long one = 1;
	ssize_t rc;
	do {
		rc = write(fd, &one, sizeof one);
	} while (rc < 0 && errno == EINTR);
}

// gate_wakefd_clear empties the read end (one read(2) for an eventfd).
static void gate_wakefd_clear(int fd) {
	char buf[64];
	for (;;) {
		ssize_t rc = read(fd, buf, sizeof buf);
		if (rc < 0 && errno == EINTR) {
			continue;
		}
		if (rc < (ssize_t)sizeof buf) {
			return;
		}
	}
}

static void gate_wakefd_close(int *fds) {
	close(fds[0]);
	if (fds[1] != fds[0]) {
		close(fds[1]);
	}
}
*/
import "C"

import (
	"errors"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// maxPollItems bounds a Poller: the engine polls a wake fd and one socket.
const maxPollItems = 4

// Poller polls a few zmq sockets and raw file descriptors with one
// zmq_poll call, which pebbe/zmq4's Poller cannot do (it takes sockets
// only). A Poller belongs to the loop goroutine that owns its sockets.
type Poller struct {
	items [maxPollItems]C.zmq_pollitem_t
	n     int
	errno C.int
}

// ErrPollerFull is returned by Add beyond the Poller's fixed capacity.
var ErrPollerFull = errors.New("zmqx: poller full")

// AddSocket polls s for events (zmq.POLLIN, zmq.POLLOUT) and returns the
// item's index.
func (p *Poller) AddSocket(s *zmq.Socket, events zmq.State) (int, error) {
	raw := rawSocket(s)
	if raw == nil {
		return -1, errors.New("zmqx: poller: socket closed or zmq4 layout unknown")
	}
	if p.n == maxPollItems {
		return -1, ErrPollerFull
	}
	p.items[p.n] = C.zmq_pollitem_t{socket: raw, events: C.short(events)}
	p.n++
	return p.n - 1, nil
}

// AddFd polls a raw file descriptor for POLLIN and returns the item's
// index.
func (p *Poller) AddFd(fd int) (int, error) {
	if p.n == maxPollItems {
		return -1, ErrPollerFull
	}
	p.items[p.n] = C.zmq_pollitem_t{fd: C.int(fd), events: C.short(zmq.POLLIN)}
	p.n++
	return p.n - 1, nil
}

// SetEvents changes the events polled for item i.
func (p *Poller) SetEvents(i int, events zmq.State) { p.items[i].events = C.short(events) }

// Reset removes every item.
func (p *Poller) Reset() { p.n = 0 }

// Len returns the number of items.
func (p *Poller) Len() int { return p.n }

// Ready returns the events that item i had after the last Poll.
func (p *Poller) Ready(i int) zmq.State { return zmq.State(p.items[i].revents) }

// Poll yields the processor (see the package's Poll), then waits up to
// timeout (clamped to >= 0, rounded up to a millisecond so that a loop
// does not spin on a deadline that is less than one away) for events. It
// returns how many items are ready.
//
// It yields even when timeout is 0: a loop that polls without blocking
// because values are queued would otherwise take them one or two at a
// time while their producers run on the other processor, paying a poll
// per value (BenchmarkClientStream lost about a third of its items/s).
func (p *Poller) Poll(timeout time.Duration) (int, error) {
	runtime.Gosched()
	return p.PollNow(timeout)
}

// PollNow is Poll without the yield.
func (p *Poller) PollNow(timeout time.Duration) (int, error) {
	timeout = PollTimeout(timeout)
	ms := C.long((timeout + time.Millisecond - 1) / time.Millisecond)
	for i := range p.n {
		p.items[i].revents = 0
	}
	if p.n == 0 {
		time.Sleep(timeout)
		return 0, nil
	}
	rc := C.gate_poll(&p.items[0], C.int(p.n), ms, &p.errno)
	if rc < 0 {
		return 0, zmq.Errno(syscall.Errno(p.errno))
	}
	return int(rc), nil
}

// wakeFd is a file descriptor that a loop polls and any goroutine can
// make readable: an eventfd on Linux, a pipe elsewhere.
type wakeFd struct{ fds [2]C.int }

func newWakeFd() (*wakeFd, error) {
	w := &wakeFd{}
	if C.gate_wakefd_open(&w.fds[0]) < 0 {
		return nil, errors.New("zmqx: cannot create the wake-up file descriptor")
	}
	return w, nil
}

func (w *wakeFd) readFd() int { return int(w.fds[0]) }
func (w *wakeFd) signal()     { C.gate_wakefd_signal(w.fds[1]) }
func (w *wakeFd) clear()      { C.gate_wakefd_clear(w.fds[0]) }
func (w *wakeFd) close()      { C.gate_wakefd_close((*C.int)(unsafe.Pointer(&w.fds[0]))) }
