package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// The capacity invariant: a worker never holds more requests than the
// capacity it announced in READY. A worker holds a request from its
// REQUEST until it sends the request's final reply; a CANCEL does not end
// it (a gate worker's handler may run on for a while, a 0.2.12 worker
// never gets CANCEL and runs every request to its end).
//
// TestCapacityInvariantRandomized drives a broker over real sockets with
// random sequences of requests (some with short budgets, so that they
// time out in the queue), single replies, stream items and ends, HugeData
// chunks and ends, error ends, Gate.cancel, clients that vanish, workers
// that are lost (socket closed) or leave (DISCONNECT) and come back with
// a new READY, and pauses, while raw DEALER workers (0.2.12-like ones and
// gaterpc/2 ones that get CANCEL) record what they hold. Every message a
// worker reads is checked against the invariant; at the end every worker
// answers everything it holds and the broker must be back to idle (no
// capacity leaked). GATE_CAPACITY_STEPS sets the number of steps and
// GATE_CAPACITY_SEED replays a failure.
func TestCapacityInvariantRandomized(t *testing.T) {
	steps := 4000
	if testing.Short() {
		steps = 1000
	}
	if s, err := strconv.Atoi(os.Getenv("GATE_CAPACITY_STEPS")); err == nil && s > 0 {
		steps = s
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("GATE_CAPACITY_SEED"), 10, 64); err == nil {
		seed = s
	}
	// Middleware that gives up on some requests (a short deadline), so
	// that the broker's abandon path runs against replies in flight.
	impatient := func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			if len(req.ID) > 0 && req.ID[len(req.ID)-1]%5 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
			}
			return next.ServeRPC(ctx, req, w)
		})
	}
	for _, mode := range []struct {
		name string
		opts []broker.Option
	}{
		{"plain", nil},
		{"middleware", []broker.Option{broker.WithMiddleware(impatient)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Logf("seed %d, %d steps (GATE_CAPACITY_SEED=%d replays)", seed, steps, seed)
			opts := append([]broker.Option{broker.WithLiveness(1000), broker.WithQueueTimeout(3 * time.Millisecond),
				broker.WithQueueLimit(16)}, mode.opts...)
			h := gatetest.StartBroker(t, opts...)
			m := &capModel{t: t, h: h, rng: rand.New(rand.NewPCG(seed, 1))}
			m.run(steps)
		})
	}
}

type heldReq struct {
	client, rid []byte
	mode        int // 0 not started, 1 single, 2 stream, 3 huge
	cancelled   bool
}

type capWorker struct {
	w        *gatetest.RawWorker
	capacity int
	ack      bool // announces gaterpc/2 (gets CANCEL)
	held     []*heldReq
	peak     int
}

type capClient struct {
	c   *gatetest.RawClient
	out [][]byte // base request ids not known to be finished
}

type capModel struct {
	t       *testing.T
	h       *gatetest.Harness
	rng     *rand.Rand
	step    int
	seq     int
	workers []*capWorker
	clients []*capClient
	counts  map[string]int
}

func (m *capModel) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("step %d: %s", m.step, fmt.Sprintf(format, args...))
}

func (m *capModel) newWorker(capacity int, ack bool) *capWorker {
	w := &capWorker{w: m.h.RawWorker(m.t), capacity: capacity, ack: ack}
	w.w.AutoHeartbeat = false
	w.w.Ready("S", "capacity", capacity)
	if ack {
		w.w.Heartbeat([]byte(wire.GateCapabilityAck))
	}
	return w
}

func (m *capModel) run(steps int) {
	m.counts = map[string]int{}
	for i := range 3 {
		m.workers = append(m.workers, m.newWorker(1+i, i != 0))
	}
	for range 3 {
		m.clients = append(m.clients, &capClient{c: m.h.RawClient(m.t)})
	}
	type action struct {
		name   string
		weight int
		do     func()
	}
	actions := []action{
		{"request", 30, m.request},
		{"reply", 30, m.reply},
		{"cancel", 8, m.cancel},
		{"client_gone", 1, m.clientGone},
		{"worker_lost", 1, func() { m.replaceWorker(false) }},
		{"worker_leaves", 1, func() { m.replaceWorker(true) }},
		{"duplicate_ready", 1, m.duplicateReady},
		{"pause", 3, func() { time.Sleep(time.Duration(m.rng.IntN(4)) * time.Millisecond) }},
	}
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	for m.step = 0; m.step < steps; m.step++ {
		n := m.rng.IntN(total)
		for _, a := range actions {
			if n < a.weight {
				a.do()
				m.counts[a.name]++
				break
			}
			n -= a.weight
		}
		m.pump()
	}
	m.finish()
	peaks := make([]string, len(m.workers))
	for i, w := range m.workers {
		peaks[i] = fmt.Sprintf("%d/%d", w.peak, w.capacity)
	}
	st := stats(m.h)
	m.t.Logf("actions %v; peak held/capacity of the last workers %v; outcomes %v; drops %v",
		m.counts, peaks, st.Outcomes, st.Drops)
}

// pump reads everything the workers and clients have waiting, checking
// the invariant on every REQUEST.
func (m *capModel) pump() {
	m.t.Helper()
	for _, w := range m.workers {
	read:
		for {
			msg, err := w.w.Recv(0)
			if err != nil {
				break
			}
			wm, err := wire.ParseWorkerMessage(msg)
			if err != nil {
				m.fail("worker got %s: %v", gatetest.Dump(msg), err)
			}
			switch wm.Command {
			case wire.CmdHeartbeat:
				w.w.Heartbeat()
			case wire.CmdRequest:
				if len(w.held)+1 > w.capacity {
					m.fail("capacity invariant broken: worker %s (capacity %d) got a REQUEST while holding %d",
						w.w.ID, w.capacity, len(w.held))
				}
				w.held = append(w.held, &heldReq{client: wm.Client, rid: wm.RequestID})
				w.peak = max(w.peak, len(w.held))
			case wire.CmdCancel:
				if !w.ack {
					m.fail("CANCEL to a worker without the capability")
				}
				for _, r := range w.held {
					if string(r.client) == string(wm.Client) && string(r.rid) == string(wm.RequestID) {
						r.cancelled = true
					}
				}
			case wire.CmdDisconnect:
				if m.disconnected(w) {
					break read // replaced by a new worker
				}
			}
		}
	}
	for _, c := range m.clients {
		for {
			if _, err := c.c.Recv(0); err != nil {
				break
			}
		}
	}
}

func (m *capModel) request() {
	c := m.clients[m.rng.IntN(len(m.clients))]
	m.seq++
	base := []byte(fmt.Sprintf("r%07d", m.seq))
	id := base
	if m.rng.IntN(4) == 0 {
		id = wire.EncodeRequestID(base, wire.RequestMeta{Budget: time.Duration(1+m.rng.IntN(5)) * time.Millisecond})
	}
	c.c.Request("S", id, call(m.t, "f")...)
	c.out = append(c.out, base)
	if len(c.out) > 64 {
		c.out = c.out[1:]
	}
}

func (m *capModel) cancel() {
	c := m.clients[m.rng.IntN(len(m.clients))]
	if len(c.out) == 0 {
		return
	}
	base := c.out[m.rng.IntN(len(c.out))]
	m.seq++
	c.c.Request(wire.InternalService, []byte(fmt.Sprintf("c%07d", m.seq)), call(m.t, "cancel", base)...)
}

func (m *capModel) clientGone() {
	i := m.rng.IntN(len(m.clients))
	m.clients[i].c.Close()
	m.clients[i] = &capClient{c: m.h.RawClient(m.t)}
}

// reply sends the next reply message of a random held request.
func (m *capModel) reply() {
	var ws []*capWorker
	for _, w := range m.workers {
		if len(w.held) > 0 {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return
	}
	w := ws[m.rng.IntN(len(ws))]
	i := m.rng.IntN(len(w.held))
	r := w.held[i]
	if r.mode == 0 {
		r.mode = 1 + m.rng.IntN(3)
	}
	final := r.mode == 1 || m.rng.IntN(3) == 0
	var body [][]byte
	switch {
	case r.mode == 1:
		body = [][]byte{result(m.t, 1)}
	case !final && r.mode == 2:
		body = wire.StreamItemBody(mp(m.t, 1))
	case !final:
		body = wire.HugeChunkBody([]byte("chunk"))
	case r.mode == 2 && m.rng.IntN(2) == 0:
		body = wire.StreamEndBody()
	case r.mode == 2:
		body = wire.StreamErrorBody(mp(m.t, []string{"E", "E()", ""}))
	case m.rng.IntN(2) == 0:
		body = wire.HugeEndBody()
	default:
		body = wire.HugeErrorBody(mp(m.t, []string{"E", "E()", ""}))
	}
	w.w.Reply(r.client, r.rid, body...)
	if final {
		w.held = append(w.held[:i], w.held[i+1:]...)
	}
}

// duplicateReady sends READY again from a registered worker: the broker
// bans it (DISCONNECT) and fails what it holds (spec quirk 6).
func (m *capModel) duplicateReady() {
	w := m.workers[m.rng.IntN(len(m.workers))]
	w.w.Ready("S", "capacity", w.capacity)
}

// disconnected handles DISCONNECT from the broker: a 0.2.12-like worker
// with _reconnect registers again under the same routing id and still
// holds (and will answer) its requests; a gate worker reconnects as a new
// peer, its old calls cancelled.
func (m *capModel) disconnected(w *capWorker) (replaced bool) {
	if w.ack {
		for i, x := range m.workers {
			if x == w {
				w.w.Close()
				m.workers[i] = m.newWorker(w.capacity, w.ack)
			}
		}
		return true
	}
	w.w.Ready("S", "capacity", w.capacity)
	return false
}

// replaceWorker takes a random worker away, by DISCONNECT or by closing
// its socket, and registers a new one (a new process) in its place.
func (m *capModel) replaceWorker(disconnect bool) {
	i := m.rng.IntN(len(m.workers))
	old := m.workers[i]
	if disconnect {
		old.w.Disconnect([]byte("bye"))
	}
	old.w.Close()
	m.workers[i] = m.newWorker(old.capacity, old.ack)
}

// finish answers everything the workers hold until the broker is idle:
// nothing in flight or queued, every worker idle (no capacity leaked).
func (m *capModel) finish() {
	m.t.Helper()
	deadline := time.Now().Add(gatetest.TestTimeout)
	for {
		m.pump()
		for _, w := range m.workers {
			for _, r := range w.held {
				w.w.Reply(r.client, r.rid, result(m.t, "end"))
			}
			w.held = w.held[:0]
		}
		st := stats(m.h)
		idle := st.InFlight == 0 && st.Requests == 0 && st.Workers == len(m.workers)
		for _, s := range st.Services {
			idle = idle && s.Queued == 0 && s.InFlight == 0 && s.Workers["idle"] == s.Workers["idle"]+s.Workers["busy"]+s.Workers["full"]
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			m.fail("broker not idle after every worker answered: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestCancelAckKeepsCapacity: a request cancelled on a gaterpc/2 worker
// keeps its unit of the worker's capacity until the worker's final reply
// (its handler may run on after CANCEL); that reply is dropped, then the
// queued request is dispatched. (A gaterpc/1 worker gets the capacity
// back at CANCEL: TestCancel.)
func TestCancelAckKeepsCapacity(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "G", 1)
	w.Heartbeat([]byte(wire.GateCapabilityAck))
	waitStats(t, h, "capability heartbeat", func(st broker.Stats) bool { return st.HeartbeatsReceived >= 2 })
	c := h.RawClient(t)
	c.Request("G", rid(1), call(t, "slow")...)
	req := w.NextRequest(recvTimeout)
	c.Request("G", rid(2), call(t, "next")...)
	waitStats(t, h, "queued", func(broker.Stats) bool { return serviceStats(t, h, "G").Queued == 1 })
	c.Request(wire.InternalService, rid(3), call(t, "cancel", rid(1))...)
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.Body[0], result(t, true)) {
		t.Fatalf("cancel reply %x, want true", rep.Body[0])
	}
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdCancel || !bytes.Equal(m.RequestID, req.RequestID) {
		t.Fatalf("worker got %v, %v; want CANCEL", m.Command, err)
	}
	w.ExpectNoWork(30 * time.Millisecond) // still holds rid 1: capacity 1 is used
	if s := serviceStats(t, h, "G"); s.InFlight != 1 || s.Queued != 1 {
		t.Fatalf("after CANCEL: %+v, want 1 in flight (the cancelled call) and 1 queued", s)
	}
	w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, "late"))...) // dropped
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)               // dropped, frees the slot
	req2 := w.NextRequest(recvTimeout)
	if !bytes.Equal(req2.RequestID, rid(2)) {
		t.Fatalf("next request %q, want %q", req2.RequestID, rid(2))
	}
	w.Reply(req2.Client, req2.RequestID, result(t, 2))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(2)) {
		t.Fatalf("client got a reply for %q, want only %q (the cancelled call's replies are dropped)", rep.RequestID, rid(2))
	}
}

// TestRejoinKeepsHeldRequests: a 0.2.12 worker banned for a duplicate
// READY while it runs requests registers again under the same routing id
// (its _reconnect flag) and still holds them. Its new registration starts
// with them counted: no new REQUEST until it has answered them (their
// replies are dropped: the callers got WorkerLostError).
func TestRejoinKeepsHeldRequests(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := readyWorker(t, h, "P", 2)
	c := h.RawClient(t)
	c.Request("P", rid(1), call(t, "f")...)
	c.Request("P", rid(2), call(t, "f")...)
	held := []wire.WorkerMessage{w.NextRequest(recvTimeout), w.NextRequest(recvTimeout)}
	w.Ready("P", "P service", 2) // duplicate: banned
	wantDisconnect(t, w, "duplicate READY")
	for range 2 {
		wantException(t, c.NextReply(recvTimeout), "WorkerLostError", "")
	}
	w.Ready("P", "P service", 2) // same routing id again
	waitStats(t, h, "registered again", func(st broker.Stats) bool { return st.Workers == 1 })
	if s := serviceStats(t, h, "P"); s.InFlight != 2 || s.Workers["full"] != 1 {
		t.Fatalf("after rejoining: %+v, want its 2 requests in flight and the worker full", s)
	}
	c.Request("P", rid(3), call(t, "f")...)
	waitStats(t, h, "queued", func(broker.Stats) bool { return serviceStats(t, h, "P").Queued == 1 })
	w.ExpectNoWork(30 * time.Millisecond)
	w.Reply(held[0].Client, held[0].RequestID, result(t, "late")) // dropped, frees one unit
	req := w.NextRequest(recvTimeout)
	if !bytes.Equal(req.RequestID, rid(3)) {
		t.Fatalf("next request %q, want %q", req.RequestID, rid(3))
	}
	w.Reply(req.Client, req.RequestID, result(t, 3))
	if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(3)) {
		t.Fatalf("client got a reply for %q, want %q (late replies are dropped)", rep.RequestID, rid(3))
	}
	w.Reply(held[1].Client, held[1].RequestID, result(t, "late"))
	waitStats(t, h, "idle", func(st broker.Stats) bool { return st.InFlight == 0 })
}
