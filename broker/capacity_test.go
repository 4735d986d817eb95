package broker_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// The capacity invariant: a worker never holds more requests than the
// capacity it announced in READY. A worker holds a request from its
// REQUEST until it sends the request's final reply; a CANCEL does not end
// it (a gate worker's handler may run on after CANCEL, a 0.2.12 worker
// never gets CANCEL and runs every request to its end).
//
// TestCapacityInvariantRandomized drives a broker over real sockets with
// random sequences of requests (some with short budgets, so that they
// time out in the queue, some announcing a flow-control window), single
// replies, stream items and ends, HugeData chunks and ends, error ends,
// Gate.cancel, Gate.credit, replies past the window (flow violations),
// clients that vanish, workers that are lost (socket closed) or leave
// (DISCONNECT) and come back with a new READY, and pauses, while raw
// DEALER workers (0.2.12-like, gaterpc/2 and gaterpc/3) record what they
// hold. Every message a worker reads is checked: a REQUEST against the
// invariant, gate.relay only towards gaterpc/3, CANCEL only towards gate
// workers, CREDIT only towards gaterpc/3 for relayed requests and never
// above what the worker sent. At the end every worker answers everything
// it holds and the broker must be back to idle (no capacity leaked).
//
// By default it runs capSteps steps per mode (20,000 with -short);
// GATE_CAPACITY_STEPS sets the number of steps per mode and
// GATE_CAPACITY_SEED replays a failure.
func TestCapacityInvariantRandomized(t *testing.T) {
	steps := capSteps
	if testing.Short() {
		steps = 20_000
	}
	if s, err := strconv.Atoi(os.Getenv("GATE_CAPACITY_STEPS")); err == nil && s > 0 {
		steps = s
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("GATE_CAPACITY_SEED"), 10, 64); err == nil {
		seed = s
	}
	// An admission filter that refuses some requests, and an observer
	// that sees every request and event and rewrites the metadata at each
	// dispatch (so every request id is re-encoded on the way).
	refuse := func(req *gate.Request) error {
		if len(req.ID) > 0 && req.ID[len(req.ID)-1]%5 == 0 {
			return gate.Errorf(gate.ResourceExhausted, "refused")
		}
		return nil
	}
	for _, mode := range []struct {
		name string
		opts []broker.Option
	}{
		{"plain", nil},
		{"observed", []broker.Option{broker.WithAdmission(refuse), broker.WithObserver(&capObserver{})}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Logf("seed %d, %d steps (GATE_CAPACITY_SEED=%d replays)", seed, steps, seed)
			opts := append([]broker.Option{broker.WithLiveness(1000), broker.WithQueueTimeout(3 * time.Millisecond),
				broker.WithQueueLimit(16)}, mode.opts...)
			h := gatetest.StartBroker(t, opts...)
			m := newCapModel(t, h, rand.New(rand.NewPCG(seed, 1)))
			start := time.Now()
			m.run(steps)
			t.Logf("%d steps in %v", steps, time.Since(start).Round(time.Millisecond))
		})
	}
}

// capSteps is the number of steps per mode when GATE_CAPACITY_STEPS is
// not set: 400,000 steps in all, about a minute under -race on a loaded
// 2-core machine (each step is a few messages through the broker).
const capSteps = 50_000

// capObserver rewrites the metadata of every dispatch and counts the
// broker's events (on the loop: no lock).
type capObserver struct{ events [16]int }

func (o *capObserver) Event(ev *broker.Event) { o.events[ev.Kind%16]++ }

func (*capObserver) Observe(*gate.Request, time.Time) broker.RequestObserver { return capRequest{} }

type capRequest struct{}

func (capRequest) Dispatch(d *broker.Dispatch)     { d.Metadata["x-observed"] = "1" }
func (capRequest) Reply(*gate.Reply)               {}
func (capRequest) Finish(time.Time, string, error) {}

type heldReq struct {
	client, rid []byte
	mode        int // 0 not started, 1 single, 2 stream, 3 huge
	cancelled   bool
	relay       bool // gate.relay: held to win
	batch       bool // gate.relay "2": stream items may be batched
	win         wire.Window
	sent        wire.Credit
	credit      wire.Credit
}

// Worker kinds.
const (
	kindPlain = iota // 0.2.12-like: no capability
	kindAck          // gaterpc/2: gets CANCEL
	kindFlow         // gaterpc/3: gets CANCEL and CREDIT, and gate.relay "1"
	kindBatch        // gaterpc/4: gets CANCEL and CREDIT, and gate.relay "2"; batches stream items
)

type capWorker struct {
	w        *gatetest.RawWorker
	capacity int
	kind     int
	held     []*heldReq
	peak     int
}

type capClient struct {
	c    *gatetest.RawClient
	out  [][]byte // base request ids not known to be finished
	flow [][]byte // those of them that announced a window
}

type capModel struct {
	t       *testing.T
	h       *gatetest.Harness
	rng     *rand.Rand
	step    int
	seq     int
	workers []*capWorker
	clients []*capClient

	// One poller over every peer socket: a pump is one zmq_poll, not a
	// failed receive per socket.
	poller *zmq.Poller
	owner  map[*zmq.Socket]any // *capWorker or *capClient
	dirty  bool                // peers changed: rebuild the poller

	// Bodies built once.
	reqBody, single, item, chunk, streamEnd, streamErr, hugeEnd, hugeErr, endResult [][]byte
	creditFn                                                                        []byte
	scratch                                                                         [][]byte
	nreq, nfinal, nwait                                                             int
	ping                                                                            []byte // request id of the keepalive sync waits for
	keepalive                                                                       [][]byte
}

func newCapModel(t *testing.T, h *gatetest.Harness, rng *rand.Rand) *capModel {
	exc := mp(t, []string{"E", "E()", ""})
	return &capModel{
		t: t, h: h, rng: rng, dirty: true,
		reqBody:   call(t, "f"),
		single:    [][]byte{result(t, 1)},
		item:      wire.StreamItemBody(mp(t, 1)),
		chunk:     wire.HugeChunkBody([]byte("chunk")),
		streamEnd: wire.StreamEndBody(),
		streamErr: wire.StreamErrorBody(exc),
		hugeEnd:   wire.HugeEndBody(),
		hugeErr:   wire.HugeErrorBody(exc),
		endResult: [][]byte{result(t, "end")},
		creditFn:  mp(t, wire.CreditFunction),
		keepalive: call(t, "keepalive", []byte("heartbeat")),
	}
}

func (m *capModel) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("step %d: %s", m.step, fmt.Sprintf(format, args...))
}

func (m *capModel) newWorker(capacity, kind int) *capWorker {
	w := &capWorker{w: m.h.RawWorker(m.t), capacity: capacity, kind: kind}
	w.w.AutoHeartbeat = false
	w.w.Ready("S", "capacity", capacity)
	switch kind {
	case kindAck:
		w.w.Heartbeat([]byte(wire.GateCapabilityAck))
	case kindFlow:
		w.w.Heartbeat([]byte(wire.GateCapabilityFlow))
	case kindBatch:
		w.w.Heartbeat([]byte(wire.GateCapabilityFlow))
		w.w.Heartbeat([]byte(wire.GateCapabilityBatch))
	}
	m.dirty = true
	return w
}

func (m *capModel) newClient() *capClient {
	m.dirty = true
	return &capClient{c: m.h.RawClient(m.t)}
}

func (m *capModel) run(steps int) {
	for i := range 4 {
		m.workers = append(m.workers, m.newWorker(1+i, i)) // plain/1, gaterpc/2 /2, gaterpc/3 /3, gaterpc/4 /4
	}
	for range 3 {
		m.clients = append(m.clients, m.newClient())
	}
	type action struct {
		name   string
		weight int
		do     func()
	}
	actions := []action{
		{"request", 250, m.request},
		{"reply", 400, m.reply},
		{"cancel", 60, m.cancel},
		{"credit", 60, m.credit},
		{"client_gone", 4, m.clientGone},
		{"worker_lost", 4, func() { m.replaceWorker(false) }},
		{"worker_leaves", 4, func() { m.replaceWorker(true) }},
		{"duplicate_ready", 4, m.duplicateReady},
		{"pause", 3, func() { time.Sleep(time.Duration(m.rng.IntN(3)) * time.Millisecond) }},
	}
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	counts := make([]int, len(actions))
	for m.step = 0; m.step < steps; m.step++ {
		n := m.rng.IntN(total)
		for i, a := range actions {
			if n < a.weight {
				a.do()
				counts[i]++
				break
			}
			n -= a.weight
		}
		if m.step%2 == 1 {
			m.pump()
		}
		if m.step%syncEvery == syncEvery-1 {
			m.sync()
		}
	}
	m.finish()
	done := map[string]int{}
	for i, a := range actions {
		done[a.name] = counts[i]
	}
	peaks := make([]string, len(m.workers))
	for i, w := range m.workers {
		peaks[i] = fmt.Sprintf("%d/%d", w.peak, w.capacity)
	}
	st := stats(m.h)
	m.t.Logf("actions %v; %d REQUESTs taken by the workers, %d final replies, %d waits for credit; peak held/capacity of the last workers %v; outcomes %v; drops %v",
		done, m.nreq, m.nfinal, m.nwait, peaks, st.Outcomes, st.Drops)
}

// syncEvery is how often (in steps) the model waits for the broker to
// catch up: the model produces messages faster than a broker under -race
// handles them, and a broker far behind only rejects requests.
const syncEvery = 32

// sync sends Gate.keepalive and pumps until its answer is back: the
// broker has then read everything the model sent before it on the
// frontend, and (it alternates between its sockets) most of what the
// workers sent. A ping lost with its client is given up after a while.
func (m *capModel) sync() {
	c := m.clients[0]
	m.seq++
	m.ping = strconv.AppendInt([]byte("p"), int64(m.seq), 10)
	send(c.c.RawPeer, frameEmpty, frameClient, frameGate, m.ping, m.keepalive[0], m.keepalive[1], m.keepalive[2])
	deadline := time.Now().Add(time.Second)
	for m.ping != nil && time.Now().Before(deadline) {
		m.pumpWait(time.Millisecond) // blocks: the broker gets the CPU
	}
	m.ping = nil
}

// pump reads everything the workers and clients have waiting, checking
// every message a worker gets.
func (m *capModel) pump() { m.pumpWait(0) }

// pumpWait is pump that first waits up to wait for a message.
func (m *capModel) pumpWait(wait time.Duration) {
	if m.dirty {
		m.poller = zmq.NewPoller()
		m.owner = make(map[*zmq.Socket]any, len(m.workers)+len(m.clients))
		for _, w := range m.workers {
			m.poller.Add(w.w.Socket(), zmq.POLLIN)
			m.owner[w.w.Socket()] = w
		}
		for _, c := range m.clients {
			m.poller.Add(c.c.Socket(), zmq.POLLIN)
			m.owner[c.c.Socket()] = c
		}
		m.dirty = false
	}
	polled, err := m.poller.Poll(wait)
	if err != nil {
		return // EINTR: the next pump reads it
	}
	for _, p := range polled {
		switch o := m.owner[p.Socket].(type) {
		case *capWorker:
			m.readWorker(o)
		case *capClient:
			for {
				msg, err := o.c.Recv(0)
				if err != nil {
					break
				}
				if len(msg) > 3 && bytes.Equal(msg[3], m.ping) {
					m.ping = nil
				}
			}
		}
	}
}

func (m *capModel) readWorker(w *capWorker) {
	for {
		msg, err := w.w.Recv(0)
		if err != nil {
			return
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
			r := &heldReq{client: wm.Client, rid: wm.RequestID}
			if wire.IsExtended(wm.RequestID) {
				_, meta, err := wire.DecodeRequestID(wm.RequestID)
				if err != nil {
					m.fail("request id %x: %v", wm.RequestID, err)
				}
				if meta.MD[wire.MetaRelay] != "" {
					// A gaterpc/4 worker is a gaterpc/3 one until the broker
					// has read its second capability heartbeat.
					relay := meta.MD[wire.MetaRelay]
					if !(relay == wire.RelayCredit && (w.kind == kindFlow || w.kind == kindBatch)) && !(relay == wire.RelayBatch && w.kind == kindBatch) {
						m.fail("gate.relay=%q to a worker of kind %d", meta.MD[wire.MetaRelay], w.kind)
					}
					if r.win, err = wire.ParseWindow(meta.MD[wire.MetaWindow]); err != nil {
						m.fail("gate.relay with window %q: %v", meta.MD[wire.MetaWindow], err)
					}
					r.relay, r.batch = true, relay == wire.RelayBatch
				}
			}
			w.held = append(w.held, r)
			m.nreq++
			w.peak = max(w.peak, len(w.held))
		case wire.CmdCancel:
			if w.kind == kindPlain {
				m.fail("CANCEL to a worker without the capability")
			}
			if r := w.find(wm.Client, wm.RequestID); r != nil {
				r.cancelled = true
			}
		case wire.CmdCredit:
			if w.kind != kindFlow && w.kind != kindBatch {
				m.fail("CREDIT to a worker of kind %d", w.kind)
			}
			c, err := wire.ParseCredit(wm.Body[0])
			if err != nil {
				m.fail("CREDIT payload %x: %v", wm.Body[0], err)
			}
			r := w.find(wm.Client, wm.RequestID)
			if r == nil {
				break // the worker ended it before the credit came
			}
			if !r.relay || c.Items > r.sent.Items || c.Bytes > r.sent.Bytes || c.Items < r.credit.Items || c.Bytes < r.credit.Bytes {
				m.fail("CREDIT %+v for a request (relay %v) with %+v sent and %+v credit", c, r.relay, r.sent, r.credit)
			}
			r.credit = c
		case wire.CmdDisconnect:
			if m.disconnected(w) {
				return // replaced by a new worker
			}
		}
	}
}

func (w *capWorker) find(client, rid []byte) *heldReq {
	for _, r := range w.held {
		if bytes.Equal(r.client, client) && bytes.Equal(r.rid, rid) {
			return r
		}
	}
	return nil
}

func (m *capModel) request() {
	c := m.clients[m.rng.IntN(len(m.clients))]
	m.seq++
	base := strconv.AppendInt([]byte("r"), int64(m.seq), 10)
	var meta wire.RequestMeta
	if m.rng.IntN(4) == 0 {
		meta.Budget = time.Duration(1+m.rng.IntN(5)) * time.Millisecond
	}
	flow := m.rng.IntN(3) == 0
	if flow {
		meta.MD = map[string]string{wire.MetaWindow: wire.Window{Items: 1 + int64(m.rng.IntN(4)), Bytes: 1024}.String()}
	}
	send(c.c.RawPeer, frameEmpty, frameClient, frameS, wire.EncodeRequestID(base, meta), m.reqBody[0], m.reqBody[1], m.reqBody[2])
	c.out = remember(c.out, base)
	if flow {
		c.flow = remember(c.flow, base)
	}
}

var (
	frameEmpty  = []byte{}
	frameClient = []byte(wire.ClientHeader)
	frameS      = []byte("S")
	frameGate   = []byte(wire.InternalService)
	frameWorker = []byte(wire.WorkerHeader)
	cmdReply    = []byte{byte(wire.CmdReply)}
)

// remember appends id to the last 64 ids.
func remember(ids [][]byte, id []byte) [][]byte {
	if len(ids) == 64 {
		copy(ids, ids[1:])
		ids = ids[:63]
	}
	return append(ids, id)
}

// send is RawPeer.Send without its per-call testing.T.Helper (costly at
// a million steps).
func send(p *gatetest.RawPeer, frames ...[]byte) {
	s := p.Socket()
	for i, f := range frames {
		flag := zmq.SNDMORE
		if i == len(frames)-1 {
			flag = 0
		}
		if _, err := s.SendBytes(f, flag); err != nil {
			panic(fmt.Sprintf("send to the broker: %v", err))
		}
	}
}

func (m *capModel) cancel() {
	c := m.clients[m.rng.IntN(len(m.clients))]
	if len(c.out) == 0 {
		return
	}
	base := c.out[m.rng.IntN(len(c.out))]
	m.seq++
	body := call(m.t, "cancel", base)
	send(c.c.RawPeer, frameEmpty, frameClient, frameGate, strconv.AppendInt([]byte("c"), int64(m.seq), 10), body[0], body[1], body[2])
}

// credit grants a random cumulative credit (often more than was relayed:
// the broker caps it) for a random request of a random client.
func (m *capModel) credit() {
	c := m.clients[m.rng.IntN(len(m.clients))]
	ids := c.flow
	if m.rng.IntN(8) == 0 {
		ids = c.out // mostly requests without a window: dropped
	}
	if len(ids) == 0 {
		return
	}
	base := ids[m.rng.IntN(len(ids))]
	items, n := int64(m.rng.IntN(8)), int64(m.rng.IntN(64))
	if m.rng.IntN(2) == 0 {
		items, n = 1<<40, 1<<40
	}
	m.seq++
	send(c.c.RawPeer, frameEmpty, frameClient, frameGate, strconv.AppendInt([]byte("k"), int64(m.seq), 10), m.creditFn, mp(m.t, []any{base, items, n}))
}

func (m *capModel) clientGone() {
	i := m.rng.IntN(len(m.clients))
	m.clients[i].c.Close()
	m.clients[i] = m.newClient()
}

// reply sends the next reply message of a random held request. A relayed
// request whose window is used up mostly waits (nothing is sent) or ends,
// and now and then gets one more item anyway: a flow violation, which the
// broker answers with CANCEL.
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
	if !final && r.relay && !r.win.MaySend(r.sent, r.credit) {
		switch m.rng.IntN(16) {
		case 0: // violate the window
		case 1, 2, 3, 4, 5, 6, 7:
			final = true
		default:
			m.nwait++
			return // wait for credit
		}
	}
	var body [][]byte
	items := int64(1) // stream items or chunks in body
	switch {
	case r.mode == 1:
		body = m.single
	case !final && r.mode == 2 && r.batch && m.rng.IntN(2) == 0:
		// A batch of up to four one-byte items, within what the window
		// has room for (at least one: past the window it is a violation).
		items = int64(1 + m.rng.IntN(4))
		room := r.win.Items - r.credit.Outstanding(r.sent).Items
		room = min(room, r.win.Bytes-r.credit.Outstanding(r.sent).Bytes)
		items = max(min(items, room), 1)
		body = wire.StreamBatchBody(bytes.Repeat(m.item[1], int(items)))
	case !final && r.mode == 2:
		body = m.item
	case !final:
		body = m.chunk
	case r.mode == 2 && m.rng.IntN(2) == 0:
		body = m.streamEnd
	case r.mode == 2:
		body = m.streamErr
	case m.rng.IntN(2) == 0:
		body = m.hugeEnd
	default:
		body = m.hugeErr
	}
	out := append(m.scratch[:0], frameEmpty, frameWorker, cmdReply, r.client, frameEmpty, r.rid)
	out = append(out, body...)
	send(w.w.RawPeer, out...)
	m.scratch = out[:0]
	if final {
		m.nfinal++
		w.held = append(w.held[:i], w.held[i+1:]...)
	} else {
		r.sent.Items += items
		r.sent.Bytes += int64(len(body[len(body)-1]))
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
	if w.kind != kindPlain {
		for i, x := range m.workers {
			if x == w {
				w.w.Close()
				m.workers[i] = m.newWorker(w.capacity, w.kind)
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
	m.workers[i] = m.newWorker(old.capacity, old.kind)
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
				w.w.Reply(r.client, r.rid, m.endResult...)
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
	w.ExpectQuiet(2) // still holds rid 1: capacity 1 is used
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
	w.ExpectQuiet(2)
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
