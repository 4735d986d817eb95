package zmqx

import (
	"context"
	"sync"
	"sync/atomic"
)

// signaler makes a sleeping loop wake up: a write on an eventfd (Queue)
// or a token on an inproc PAIR (Mailbox).
type signaler interface{ signal() }

// Queue carries values from any goroutine to the loop that owns a
// component's sockets, with a wake-up that costs at most one write(2) per
// batch rather than one per value.
//
// Producers append under a mutex. A flag records that the loop is awake
// or already signalled: only the producer that flips it (the first one
// after the loop announced it is going to sleep) writes the wake fd. The
// loop polls Fd next to its sockets (with a [Poller]) and runs:
//
//	for {
//		pending := q.Sleep()          // about to block: producers must signal
//		timeout := next
//		if pending { timeout = 0 }
//		n, err := poller.Poll(timeout)
//		q.Awake(poller.Ready(wakeItem) != 0) // awake: no more signals
//		batch = q.Take(batch)                 // the whole batch at once
//		...
//	}
//
// Push, PushWait, Wake and Len are safe for concurrent use; the other
// methods belong to the loop goroutine.
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	max    int
	room   chan struct{} // closed when Take makes room; nil when nobody waits
	closed bool
	done   chan struct{} // closed by Close

	n        atomic.Int64 // len(items), readable without the mutex
	signaled atomic.Bool  // the loop is awake or has been signalled

	sig signaler
	fd  *wakeFd // nil for a Mailbox's queue
}

// NewQueue returns a queue holding up to capacity values, woken through
// an eventfd (a pipe outside Linux). Close it to release the descriptor.
func NewQueue[T any](capacity int) (*Queue[T], error) {
	fd, err := newWakeFd()
	if err != nil {
		return nil, err
	}
	q := newQueue[T](capacity, fd)
	q.fd = fd
	return q, nil
}

func newQueue[T any](capacity int, sig signaler) *Queue[T] {
	if capacity < 1 {
		capacity = 1
	}
	q := &Queue[T]{max: capacity, done: make(chan struct{}), sig: sig}
	q.signaled.Store(true) // the loop is awake until its first Sleep
	return q
}

// Fd is the descriptor to poll for POLLIN (see [Poller.AddFd]).
func (q *Queue[T]) Fd() int { return q.fd.readFd() }

// Push queues v without waiting: ErrFull when the queue holds capacity
// values, ErrClosed after Close.
func (q *Queue[T]) Push(v T) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return ErrFull
	}
	q.items = append(q.items, v)
	q.n.Store(int64(len(q.items)))
	q.wakeLocked()
	q.mu.Unlock()
	return nil
}

// PushWait queues v, waiting for room until ctx is done or the queue is
// closed.
func (q *Queue[T]) PushWait(ctx context.Context, v T) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if len(q.items) < q.max {
			q.items = append(q.items, v)
			q.n.Store(int64(len(q.items)))
			q.wakeLocked()
			q.mu.Unlock()
			return nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.wakeLocked() // the loop may be asleep with a full queue
		q.mu.Unlock()
		select {
		case <-room:
		case <-q.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Wake makes the loop run an iteration, without a value. It signals only
// if the loop is asleep and nobody signalled it since. Safe after Close
// (it does nothing).
func (q *Queue[T]) Wake() {
	q.mu.Lock()
	if !q.closed {
		q.wakeLocked()
	}
	q.mu.Unlock()
}

// wakeLocked signals under q.mu, so that Close cannot release the wake fd
// (whose number the process could reuse) during the write.
func (q *Queue[T]) wakeLocked() {
	if !q.signaled.Load() && !q.signaled.Swap(true) {
		q.sig.signal()
	}
}

// Len returns the number of queued values.
func (q *Queue[T]) Len() int { return int(q.n.Load()) }

// Sleep tells the queue that the loop is about to block in poll: from now
// on a Push signals. It reports whether values are queued already, in
// which case the loop must not block (poll with timeout 0).
func (q *Queue[T]) Sleep() bool {
	q.signaled.Store(false)
	if q.n.Load() > 0 {
		q.signaled.Store(true)
		return true
	}
	return false
}

// Awake tells the queue that the loop is running: producers stop
// signalling until the next Sleep. readable says whether the poll
// reported Fd readable; its wake-up is then consumed.
func (q *Queue[T]) Awake(readable bool) {
	q.signaled.Store(true)
	if readable && q.fd != nil {
		q.fd.clear()
	}
}

// Take returns every queued value, in order, and keeps dst's storage for
// the next batch: pass back the slice Take returned last time (its
// elements are cleared first), so that steady state allocates nothing.
func (q *Queue[T]) Take(dst []T) []T {
	clear(dst)
	q.mu.Lock()
	batch := q.items
	q.items = dst[:0]
	q.n.Store(0)
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return batch
}

// Closed is closed once Close has been called.
func (q *Queue[T]) Closed() <-chan struct{} { return q.done }

// Close refuses further values and releases the wake fd; values still
// queued can be read with Take. Loop goroutine only; idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	close(q.done)
	if c, ok := q.sig.(interface{ close() }); ok {
		c.close()
	}
	q.mu.Unlock()
}
