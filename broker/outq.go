package broker

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"strconv"
	"syscall"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
)

// Both ROUTER sockets run with ZMQ_ROUTER_MANDATORY, so a send never
// disappears silently: a peer whose pipe is full (it reads slower than the
// broker relays) gives EAGAIN, a peer that is gone gives EHOSTUNREACH.
//
// On EAGAIN the message goes to a per-peer overflow queue (peerQueue),
// and every later message for that peer queues behind it, so order is
// kept. The loop retries the queues on every iteration (polling at most
// 1 ms while any is non-empty) until the pipe takes them. A client queue
// that grows past the WithPeerBuffer limit fails that client's requests
// with a BusyWorkerError (ResourceExhausted) in the stream's own error
// marker, cancels them at gate workers, and counts "frontend/client_slow";
// final replies (one per request) are always queued, so every stream ends
// with its end or error marker and never loses items in the middle.
//
// Stream items and HugeData chunks of a request under flow control
// (flow.go) do not count towards the message limit: the reader's window
// bounds them. They count towards the byte limit, so a client with many
// open windows is bounded too.
//
// On EHOSTUNREACH a client's requests are cancelled (counted as
// "frontend/client_gone"); a worker is forgotten as if it had sent
// DISCONNECT and the REQUEST that could not be sent goes to another worker.

// peerQueue holds the messages for one peer whose pipe was full, oldest
// first. Each message is the full frame list, routing id first.
type peerQueue struct {
	id     []byte
	front  bool    // frontend (client) queue; else backend (worker)
	w      *worker // backend: the worker
	msgs   []qmsg
	head   int
	bytes  int64
	plain  int  // messages not under flow control (counted by the message limit)
	listed bool // in loop.pending
	dead   bool // peer gone: drop everything
}

// qmsg is one queued message; flowed marks a reply under flow control.
type qmsg struct {
	frames [][]byte
	flowed bool
}

func (q *peerQueue) len() int { return len(q.msgs) - q.head }

func (q *peerQueue) push(frames [][]byte, flowed bool) {
	// frames is the loop's scratch slice, and the frames themselves may be
	// in a receive buffer or a request's arena: copy all of it.
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	m := make([][]byte, len(frames))
	buf := make([]byte, 0, n)
	for i, f := range frames {
		off := len(buf)
		buf = append(buf, f...)
		m[i] = buf[off:len(buf):len(buf)]
	}
	q.msgs = append(q.msgs, qmsg{frames: m, flowed: flowed})
	q.bytes += msgSize(m)
	if !flowed {
		q.plain++
	}
}

func (q *peerQueue) pop() {
	m := &q.msgs[q.head]
	q.bytes -= msgSize(m.frames)
	if !m.flowed {
		q.plain--
	}
	*m = qmsg{}
	q.head++
	if q.head == len(q.msgs) {
		q.msgs, q.head = q.msgs[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.msgs) {
		n := copy(q.msgs, q.msgs[q.head:])
		clear(q.msgs[n:])
		q.msgs, q.head = q.msgs[:n], 0
	}
}

func msgSize(frames [][]byte) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f))
	}
	return n
}

// full reports whether q has reached the WithPeerBuffer limit: its
// messages not under flow control, or its bytes.
func (l *loop) full(q *peerQueue) bool {
	return q.plain >= l.opts.bufMsgs || l.fullBytes(q)
}

// fullBytes reports whether q has reached the WithPeerBuffer byte limit.
func (l *loop) fullBytes(q *peerQueue) bool {
	return l.opts.bufBytes > 0 && q.bytes >= l.opts.bufBytes
}

func hexID(id []byte) string { return hex.EncodeToString(id) }

func errnoOf(err error) zmq.Errno { return zmq.AsErrno(err) }

const (
	errAgain       = zmq.Errno(syscall.EAGAIN)
	errUnreachable = zmq.Errno(syscall.EHOSTUNREACH)
)

// newQueue starts an overflow queue for a peer and lists it for flushing.
func (l *loop) newQueue(id []byte, front bool, w *worker) *peerQueue {
	if front {
		id = bytes.Clone(id) // a request's, reused once it ends
	}
	q := &peerQueue{id: id, front: front, w: w}
	if front {
		l.clientQ[string(id)] = q
	} else {
		w.q = q
	}
	l.list(q)
	return q
}

func (l *loop) list(q *peerQueue) {
	if !q.listed {
		q.listed = true
		l.pending = append(l.pending, q)
	}
}

// unlist forgets an empty or dead queue.
func (l *loop) unlist(q *peerQueue) {
	if q.front {
		if l.clientQ[string(q.id)] == q {
			delete(l.clientQ, string(q.id))
		}
	} else if q.w != nil && q.w.q == q {
		q.w.q = nil
	}
}

// buffered is the number of messages and bytes held in overflow queues.
func (l *loop) buffered() (n int, bytes int64) {
	for _, q := range l.pending {
		if !q.dead {
			n += q.len()
			bytes += q.bytes
		}
	}
	return n, bytes
}

// flush sends what the overflow queues hold, oldest first, until a pipe
// is full again.
func (l *loop) flush() {
	qs := l.pending
	l.pending = nil
	for _, q := range qs {
		q.listed = false
		if !q.dead {
			l.flushQueue(q)
		}
		if !q.dead && q.len() > 0 {
			l.list(q)
		} else {
			l.unlist(q)
		}
	}
	clear(qs)
	if l.pending == nil {
		l.pending = qs[:0]
	}
}

func (l *loop) flushQueue(q *peerQueue) {
	s := l.back
	if q.front {
		s = l.front
	}
	for q.len() > 0 {
		err := l.send(s, q.msgs[q.head].frames)
		if err == nil {
			q.pop()
			continue
		}
		switch errnoOf(err) {
		case errAgain:
			return
		case errUnreachable:
			q.dead = true
			if q.front {
				l.clientGone(q.id)
			} else if q.w != nil {
				l.workerUnreachable(q.w)
			}
			return
		default:
			l.drop(socketName(q.front), "send_failed")
			q.pop()
		}
	}
}

func socketName(front bool) string {
	if front {
		return "frontend"
	}
	return "backend"
}

// sendClient sends one message (routing id first) to a client, or queues
// it behind earlier messages the client has not taken yet. final marks a
// message that ends its request; those are queued even past the limit.
func (l *loop) sendClient(client []byte, out [][]byte, final, flowed bool) {
	if len(l.clientQ) > 0 {
		if q := l.clientQ[string(client)]; q != nil {
			l.enqueueClient(q, out, final, flowed)
			return
		}
	}
	err := l.send(l.front, out)
	if err == nil {
		return
	}
	switch errnoOf(err) {
	case errAgain:
		l.enqueueClient(l.newQueue(client, true, nil), out, final, flowed)
	case errUnreachable:
		l.clientGone(client)
	default:
		l.drop("frontend", "send_failed")
	}
}

func (l *loop) enqueueClient(q *peerQueue, out [][]byte, final, flowed bool) {
	if final || (flowed && !l.fullBytes(q)) || (!flowed && !l.full(q)) {
		q.push(out, flowed)
		l.peakClientBytes = max(l.peakClientBytes, q.bytes)
		return
	}
	// The client does not keep up: fail its requests rather than lose
	// items in the middle of a stream.
	l.drop("frontend", "client_slow")
	l.failClient(q)
}

// failClient fails every live request of a slow client with a
// BusyWorkerError in the request's own error marker.
func (l *loop) failClient(q *peerQueue) {
	victims := l.clientRequests(q.id)
	if len(victims) == 0 {
		return
	}
	repr := "BusyWorkerError(" + pyRepr("client too slow: "+strconv.Itoa(q.len())+" replies waiting in the broker") + ")"
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "client too slow, failing its requests",
		slog.String("client.id", hexID(q.id)), slog.Int("requests", len(victims)), slog.Int("buffered", q.len()))
	for _, r := range victims {
		l.abort(r, OutcomeFull, "BusyWorkerError", repr)
	}
}

// clientGone cancels every live request of a client that left, at gate
// workers too, and drops what was queued for it.
func (l *loop) clientGone(client []byte) {
	l.drop("frontend", "client_gone")
	if q := l.clientQ[string(client)]; q != nil {
		q.dead = true
		l.unlist(q)
	}
	for _, r := range l.clientRequests(client) {
		l.abort(r, OutcomeCancelled, "", "")
	}
}

func (l *loop) clientRequests(client []byte) []*request {
	var rs []*request
	for _, r := range l.reqs {
		if bytes.Equal(r.client, client) {
			rs = append(rs, r)
		}
	}
	return rs
}

// abort ends a live request early on the broker's initiative: wherever it
// is, it is taken out; on a worker it is cancelled (gate workers) and
// detached (the worker keeps the capacity until its final reply, which is
// dropped with everything before it; see cancelOnWorker). With a class the
// client gets that exception, else nothing.
func (l *loop) abort(r *request, outcome, class, repr string) {
	detach := false
	switch r.state {
	case stInFlight:
		detach = l.cancelOnWorker(r)
	}
	if class != "" {
		l.fail(r, outcome, class, repr)
	} else {
		l.finish(r, outcome, nil, gate.Errorf(gate.Canceled, "client gone"))
	}
	if detach {
		l.detach(r)
	}
}

// sendWorker sends one message (routing id first) to w, or queues it
// behind earlier ones. It reports false if w is gone (it has been
// forgotten) or, for a message that is not forced, its queue is full.
func (l *loop) sendWorker(w *worker, out [][]byte, force bool) bool {
	if q := w.q; q != nil {
		if !force && l.full(q) {
			l.drop("backend", "worker_slow")
			return false
		}
		q.push(out, false)
		return true
	}
	err := l.send(l.back, out)
	if err == nil {
		return true
	}
	switch errnoOf(err) {
	case errAgain:
		l.newQueue(w.id, false, w).push(out, false)
		return true
	case errUnreachable:
		l.workerUnreachable(w)
	default:
		l.drop("backend", "send_failed")
	}
	return false
}

// workerUnreachable forgets a worker whose connection is gone.
func (l *loop) workerUnreachable(w *worker) {
	l.drop("backend", "worker_gone")
	if q := w.q; q != nil {
		q.dead = true
		l.unlist(q)
	}
	if !w.dead && l.workers[w.key] == w {
		w.unreachable = true
		l.removeWorker(w, GoneDisconnect, false)
	}
}

// cancelOnWorker sends CANCEL for an in-flight r to a gate worker and
// reports whether r must stay detached on its worker, holding one unit of
// its capacity until the worker's final reply: always, except on a
// worker that announced only wire.GateCapability, which never sends a
// final reply after CANCEL (r is forgotten and the capacity comes back
// now, although the worker may still be running the call).
func (l *loop) cancelOnWorker(r *request) (detach bool) {
	w := r.worker
	if !w.gate {
		return true
	}
	l.toWorker(w, cmdCancel, r.client, frameEmpty, []byte(r.wireKey[1+len(r.client):]))
	if w.ack {
		return true
	}
	l.forget(r)
	return false
}

// detach leaves a finished r on its worker (see cancelOnWorker), if it is
// still there: sending CANCEL may have found the worker gone, and its
// removal took r off its table already (and counted it out of flight).
func (l *loop) detach(r *request) {
	if w := r.worker; w == nil || w.dead || w.reqs[r.wireKey] != r {
		r.state = stDone
		return
	}
	r.state = stInFlight
	r.detached = true
}
