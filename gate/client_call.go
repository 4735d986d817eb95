package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/gaterpc/gate/internal/bounded"
	"github.com/gaterpc/gate/internal/wire"
)

// inbound is one reply message for a call, as the client loop hands it
// over: classified, not decoded.
type inbound struct {
	kind    ReplyKind
	payload []byte   // item, chunk, triple or reply map (see wire.ClassifyReply)
	body    [][]byte // body frames as received
}

// call is one pending request: the entry of the pending table and the
// queue through which the client loop hands replies to the caller.
//
// The loop only appends (never blocks); the caller's goroutine pops,
// decodes and decompresses. The queue is bounded by maxBytes (body bytes
// plus msgOverhead per message) and, for a reader the application drives,
// by the call's window (see callFlow); an overflow fails the call with
// ResourceExhausted (see [Stream] for why the loop cannot wait instead).
type call struct {
	key     string // string(id): the pending-table key
	id      []byte // the request id exactly as sent
	service string

	maxBytes int64
	flow     callFlow

	mu     sync.Mutex
	q      []inbound
	head   int
	bytes  int64
	err    error // terminal error, reported after queued messages
	final  bool  // a final message was queued: no more will come
	notify chan struct{}
}

func newCall(id []byte, service string, maxBytes int64) *call {
	return &call{
		key:      string(id),
		id:       id,
		service:  service,
		maxBytes: maxBytes,
		notify:   make(chan struct{}, 1),
	}
}

func (c *call) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// push queues one message. It never blocks. It reports false when the
// message overflowed the queue: the call is then failed and the caller of
// push (the loop) must drop the pending entry and cancel the request.
func (c *call) push(m inbound) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := c.pushLocked(m)
	c.wake()
	return ok
}

// pushAll queues several messages (the items of a batch) as push does,
// under one lock and with one wake-up.
func (c *call) pushAll(ms []inbound) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := true
	for _, m := range ms {
		if ok = c.pushLocked(m); !ok {
			break
		}
	}
	c.wake()
	return ok
}

func (c *call) pushLocked(m inbound) bool {
	if c.err != nil || c.final {
		return true // already finished; late messages are dropped
	}
	if m.kind == wire.ReplyStreamItem || m.kind == wire.ReplyHugeChunk {
		if err := c.flow.received(m.kind, int64(len(m.payload))); err != nil {
			c.err = err
			return false
		}
	}
	n := msgCost(m)
	if c.bytes+n > c.maxBytes {
		c.err = Errorf(ResourceExhausted, "reply buffer full: %d messages, %d bytes unread", len(c.q)-c.head, c.bytes)
		return false
	}
	c.q = append(c.q, m)
	c.bytes += n
	if m.kind.Final() {
		c.final = true
	}
	return true
}

// fail ends the call with err unless it already has a final message or
// an error. Queued messages are still delivered first.
func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil && !c.final {
		c.err = err
	}
	c.mu.Unlock()
	c.wake()
}

// next returns the next message, waiting until ctx is done or, when
// timeout > 0, for at most timeout while the producer may send (see
// callFlow.stalled). timer is reused across calls.
func (c *call) next(ctx context.Context, timeout time.Duration, timer **time.Timer) (inbound, error) {
	for {
		c.mu.Lock()
		if c.head < len(c.q) {
			m := c.q[c.head]
			c.q[c.head] = inbound{}
			c.head++
			c.bytes -= msgCost(m)
			if c.head == len(c.q) {
				c.q, c.head = c.q[:0], 0
			} else if c.head > 1024 && c.head*2 > len(c.q) {
				c.q = append(c.q[:0], c.q[c.head:]...)
				c.head = 0
			}
			c.mu.Unlock()
			return m, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return inbound{}, err
		}
		// A producer waiting for credit is not late: the timeout runs only
		// while the window has room (a grant wakes this wait).
		wait := timeout
		if c.flow.stalled() {
			wait = 0
		}
		c.mu.Unlock()

		var expired <-chan time.Time
		if wait > 0 {
			if *timer == nil {
				*timer = time.NewTimer(wait)
			} else {
				(*timer).Reset(wait)
			}
			expired = (*timer).C
		}
		select {
		case <-c.notify:
			if *timer != nil {
				(*timer).Stop()
			}
		case <-ctx.Done():
			if *timer != nil {
				(*timer).Stop()
			}
			return inbound{}, ctx.Err()
		case <-expired:
			return inbound{}, errItemTimeout
		}
	}
}

// msgOverhead is what one queued message costs besides its body bytes.
const msgOverhead = 64

func msgCost(m inbound) int64 {
	n := int64(msgOverhead)
	for _, f := range m.body {
		n += int64(len(f))
	}
	return n
}

// errItemTimeout is returned by call.next when the per-message timeout
// expires.
var errItemTimeout = fmt.Errorf("%w: no reply message within the reply timeout", ErrTimeout)

// pendingTable is the client's table of calls awaiting replies, keyed by
// the exact request id bytes sent: a bounded map (gaterpc's BoundedDict) that
// add waits on for room until its ctx is done, plus a closed state.
// Safe for concurrent use; the loop uses only the non-blocking methods.
type pendingTable struct {
	m      *bounded.Map[string, *call]
	mu     sync.Mutex // guards closed
	closed error
}

func newPendingTable(max int) *pendingTable {
	return &pendingTable{m: bounded.New[string, *call](max)}
}

// add registers c, waiting for room until ctx is done.
func (p *pendingTable) add(ctx context.Context, c *call) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed != nil {
		return closed
	}
	switch err := p.m.Add(ctx, c.key, c); {
	case err == nil:
	case errors.Is(err, bounded.ErrExists):
		return Errorf(Internal, "duplicate request id")
	default:
		return Errorf(ResourceExhausted, "%d calls pending (MessageMax): %v", p.m.Cap(), ctx.Err())
	}
	// failAll(final) may have run while add waited: do not leave c behind.
	p.mu.Lock()
	closed = p.closed
	p.mu.Unlock()
	if closed != nil {
		p.remove(c)
		return closed
	}
	return nil
}

// get returns the call registered under key.
func (p *pendingTable) get(key []byte) *call {
	if len(key) == 0 {
		return nil
	}
	// The lookup keeps no reference to the key: view the bytes as a
	// string instead of copying them (one allocation per reply).
	c, _ := p.m.Load(unsafe.String(&key[0], len(key)))
	return c
}

// remove drops c if it is still registered and reports whether it was.
func (p *pendingTable) remove(c *call) bool {
	return p.m.DeleteIf(c.key, func(v *call) bool { return v == c })
}

// failAll removes every entry and fails it with err. When final is true
// the table refuses later additions with err.
func (p *pendingTable) failAll(err error, final bool) int {
	if final {
		p.mu.Lock()
		p.closed = err
		p.mu.Unlock()
	}
	n := 0
	p.m.Range(func(_ string, c *call) bool {
		if p.remove(c) {
			c.fail(err)
			n++
		}
		return true
	})
	return n
}

// len returns the number of pending calls.
func (p *pendingTable) len() int { return p.m.Len() }
