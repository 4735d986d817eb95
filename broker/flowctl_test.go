package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// Flow control at the broker (docs/flow-control.md): raw clients and raw
// workers over real sockets against a real broker.

// capWorker registers a worker that announces capability cap after READY
// and waits until the broker has read the announcement.
func capabilityWorker(t testing.TB, h *gatetest.Harness, service string, capacity int, capability string) *gatetest.RawWorker {
	t.Helper()
	before := stats(h).HeartbeatsReceived
	w := readyWorker(t, h, service, capacity)
	w.Heartbeat([]byte(capability))
	waitStats(t, h, "capability heartbeat", func(st broker.Stats) bool { return st.HeartbeatsReceived >= before+2 })
	return w
}

// flowID is a request id announcing win, plus extra metadata pairs.
func flowID(base string, win wire.Window, extra ...string) []byte {
	md := map[string]string{wire.MetaWindow: win.String()}
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	return wire.EncodeRequestID([]byte(base), wire.RequestMeta{MD: md})
}

// sendCredit sends the one-way Gate.credit(request_id, items, bytes).
func sendCredit(t testing.TB, c *gatetest.RawClient, seq int, rid []byte, items, n int64) {
	t.Helper()
	c.Request(wire.InternalService, []byte(fmt.Sprintf("credit-%06d", seq)), mp(t, wire.CreditFunction), mp(t, []any{rid, items, n}), []byte{0x80})
}

func requestMD(t testing.TB, id []byte) map[string]string {
	t.Helper()
	_, meta, err := wire.DecodeRequestID(id)
	if err != nil {
		t.Fatalf("request id %x: %v", id, err)
	}
	return meta.MD
}

// nextCredit returns the next CREDIT the worker gets, failing on anything else.
func nextCredit(t testing.TB, w *gatetest.RawWorker, rid []byte) wire.Credit {
	t.Helper()
	m, err := w.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdCredit {
		t.Fatalf("worker got %v (%v), want CREDIT", m.Command, err)
	}
	if !bytes.Equal(m.RequestID, rid) || len(m.Body) != 1 {
		t.Fatalf("CREDIT for %x with %d body frames, want %x with 1", m.RequestID, len(m.Body), rid)
	}
	c, err := wire.ParseCredit(m.Body[0])
	if err != nil {
		t.Fatalf("CREDIT payload %x: %v", m.Body[0], err)
	}
	return c
}

// TestFlowRelayMarker: the broker adds gate.relay only for a gaterpc/3
// worker and a window that parses, strips a gate.relay the client forged,
// and replies reach the client under the id it sent.
func TestFlowRelayMarker(t *testing.T) {
	win := wire.Window{Items: 8, Bytes: 4096}
	for _, tc := range []struct {
		name      string
		cap       string
		id        []byte
		wantRelay bool
	}{
		{"flow_worker", wire.GateCapabilityFlow, flowID("a", win), true},
		{"flow_worker_forged", wire.GateCapabilityFlow, flowID("b", win, wire.MetaRelay, "1"), true},
		{"flow_worker_bad_window", wire.GateCapabilityFlow, wire.EncodeRequestID([]byte("c"), wire.RequestMeta{MD: map[string]string{wire.MetaWindow: "0,1", wire.MetaRelay: "1"}}), false},
		{"flow_worker_forged_only", wire.GateCapabilityFlow, wire.EncodeRequestID([]byte("d"), wire.RequestMeta{MD: map[string]string{wire.MetaRelay: "1"}}), false},
		{"ack_worker", wire.GateCapabilityAck, flowID("e", win, wire.MetaRelay, "1"), false},
		{"plain_worker", "", flowID("f", win), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := gatetest.StartBroker(t)
			var w *gatetest.RawWorker
			if tc.cap == "" {
				w = readyWorker(t, h, "S", 1)
			} else {
				w = capabilityWorker(t, h, "S", 1, tc.cap)
			}
			c := h.RawClient(t)
			c.Request("S", tc.id, call(t, "gen")...)
			req := w.NextRequest(recvTimeout)
			md := requestMD(t, req.RequestID)
			relay, has := md[wire.MetaRelay]
			if tc.wantRelay != has || (has && relay != "1") {
				t.Fatalf("worker got metadata %v: gate.relay present %v, want %v", md, has, tc.wantRelay)
			}
			if want := requestMD(t, tc.id)[wire.MetaWindow]; md[wire.MetaWindow] != want {
				t.Fatalf("gate.window %q, want %q kept", md[wire.MetaWindow], want)
			}
			w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, 0))...)
			w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
			for range 2 {
				if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, tc.id) {
					t.Fatalf("reply under %x, want the client's id %x", rep.RequestID, tc.id)
				}
			}
		})
	}
}

// TestFlowCreditRelayed: Gate.credit is never answered; the broker
// relays it to the worker as CREDIT under the worker's request id, keeps
// the cumulative maximum (a lower credit is not relayed) and caps it at
// what it has relayed.
func TestFlowCreditRelayed(t *testing.T) {
	h := gatetest.StartBroker(t)
	w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityFlow)
	c := h.RawClient(t)
	id := flowID("credit", wire.Window{Items: 4, Bytes: 1 << 20})
	c.Request("S", id, call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	item := mp(t, "0123456789")
	for range 3 {
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(item)...)
	}
	for range 3 {
		c.NextReply(recvTimeout)
	}
	n := int64(len(item))
	sendCredit(t, c, 1, id, 2, 2*n)
	if got := nextCredit(t, w, req.RequestID); got != (wire.Credit{Items: 2, Bytes: 2 * n}) {
		t.Fatalf("CREDIT %+v, want {2 %d}", got, 2*n)
	}
	sendCredit(t, c, 2, id, 1, n) // lower: nothing to relay
	sendCredit(t, c, 3, id, 2, 2*n)
	// nextCredit below reads the next CREDIT: one relayed for these two
	// would come first and fail it.
	sendCredit(t, c, 4, id, 100, 1<<40) // more than relayed: capped
	if got := nextCredit(t, w, req.RequestID); got != (wire.Credit{Items: 3, Bytes: 3 * n}) {
		t.Fatalf("CREDIT %+v, want {3 %d} (capped at what was relayed)", got, 3*n)
	}
	c.Sync() // one-way: no answer
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	if kind, _ := wire.ClassifyReply(c.NextReply(recvTimeout).Body); kind != wire.ReplyStreamEnd {
		t.Fatalf("got %v, want the stream end", kind)
	}
	if st := stats(h); len(st.Drops) != 0 {
		t.Fatalf("drops %v", st.Drops)
	}
}

// TestFlowCreditDropped: a credit for an unknown, finished or unrelayed
// request, and a malformed credit, are dropped, counted and not answered.
func TestFlowCreditDropped(t *testing.T) {
	h := gatetest.StartBroker(t)
	flow := capabilityWorker(t, h, "F", 1, wire.GateCapabilityFlow)
	old := capabilityWorker(t, h, "A", 1, wire.GateCapabilityAck)
	c := h.RawClient(t)
	win := wire.Window{Items: 4, Bytes: 4096}

	done := flowID("done", win) // finished
	c.Request("F", done, call(t, "f")...)
	req := flow.NextRequest(recvTimeout)
	flow.Reply(req.Client, req.RequestID, result(t, 1))
	c.NextReply(recvTimeout)
	unrelayed := flowID("unrelayed", win) // on a gaterpc/2 worker
	c.Request("A", unrelayed, call(t, "f")...)
	oldReq := old.NextRequest(recvTimeout)

	sendCredit(t, c, 1, []byte("never-sent"), 1, 1)
	sendCredit(t, c, 2, done, 1, 1)
	sendCredit(t, c, 3, unrelayed, 1, 1)
	st := waitStats(t, h, "credits dropped", func(st broker.Stats) bool { return st.Drops["frontend/unknown_request"] == 3 })
	for i, body := range [][][]byte{
		{mp(t, wire.CreditFunction), mp(t, []any{done, 1})},                  // 2 args
		{mp(t, wire.CreditFunction), mp(t, []any{done, -1, 1})},              // negative
		{mp(t, wire.CreditFunction), mp(t, []any{done, "1", 1})},             // not an integer
		{mp(t, wire.CreditFunction), mp(t, []any{42, 1, 1})},                 // id not bin/str
		{mp(t, wire.CreditFunction), mp(t, []any{[]byte{}, 1, 1})},           // empty id
		{mp(t, wire.CreditFunction), mp(t, []any{done, uint64(1) << 63, 1})}, // too large
		{mp(t, wire.CreditFunction), mp(t, []any{[]byte(wire.ExtMagic + "x"), 1, 1})},
	} {
		c.Request(wire.InternalService, []byte(fmt.Sprintf("bad-%d", i)), body...)
	}
	st = waitStats(t, h, "bad credits dropped", func(st broker.Stats) bool { return st.Drops["frontend/bad_credit"] == 7 })
	c.Sync() // the credits are handled; inproc: a relay would be in the pipes now
	flow.ExpectEmpty()
	old.ExpectEmpty()
	if len(st.Drops) != 2 {
		t.Fatalf("drops %v, want only unknown_request and bad_credit", st.Drops)
	}
	old.Reply(oldReq.Client, oldReq.RequestID, result(t, 1))
	c.NextReply(recvTimeout)
}

// TestFlowViolation: a worker that sends past the window fails the call
// with BusyWorkerError in the reply's own error marker, gets CANCEL, and
// its later replies are dropped; the capacity comes back with its final
// reply.
func TestFlowViolation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		win     wire.Window
		body    func(i int) [][]byte
		n       int // messages within the window
		errKind wire.ReplyKind
		end     [][]byte
	}{
		{"stream_items", wire.Window{Items: 4, Bytes: 1 << 20},
			func(i int) [][]byte { return wire.StreamItemBody(mp(t, i)) }, 4, wire.ReplyStreamError, wire.StreamEndBody()},
		// One chunk larger than the window goes out while nothing is
		// outstanding; the next one breaks the rule.
		{"huge_bytes", wire.Window{Items: 100, Bytes: 1024},
			func(int) [][]byte { return wire.HugeChunkBody(make([]byte, 2000)) }, 1, wire.ReplyHugeError, wire.HugeEndBody()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := gatetest.StartBroker(t)
			w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityFlow)
			c := h.RawClient(t)
			id := flowID("v", tc.win)
			c.Request("S", id, call(t, "gen")...)
			req := w.NextRequest(recvTimeout)
			for i := range tc.n + 3 {
				w.Reply(req.Client, req.RequestID, tc.body(i)...)
			}
			for range tc.n {
				if kind, _ := wire.ClassifyReply(c.NextReply(recvTimeout).Body); kind.Final() {
					t.Fatalf("got %v within the window", kind)
				}
			}
			rep := c.NextReply(recvTimeout)
			kind, payload := wire.ClassifyReply(rep.Body)
			if kind != tc.errKind || !bytes.Contains(payload, []byte("BusyWorkerError")) || !bytes.Contains(payload, []byte("flow control")) {
				t.Fatalf("after the window got %v %q, want %v with BusyWorkerError", kind, payload, tc.errKind)
			}
			m, err := w.NextMessage(recvTimeout)
			if err != nil || m.Command != wire.CmdCancel || !bytes.Equal(m.RequestID, req.RequestID) {
				t.Fatalf("worker got %v (%v), want CANCEL", m.Command, err)
			}
			w.Reply(req.Client, req.RequestID, tc.end...) // dropped; frees the capacity
			c.Sync()
			st := stats(h)
			if st.Drops["backend/flow_violation"] != 1 || st.Outcomes[broker.OutcomeFull] != 1 {
				t.Fatalf("drops %v outcomes %v, want one backend/flow_violation", st.Drops, st.Outcomes)
			}
			c.Request("S", rid(2), call(t, "f")...)
			req2 := w.NextRequest(recvTimeout)
			w.Reply(req2.Client, req2.RequestID, result(t, "ok"))
			if rep := c.NextReply(recvTimeout); !bytes.Equal(rep.RequestID, rid(2)) {
				t.Fatalf("reply for %q, want %q", rep.RequestID, rid(2))
			}
		})
	}
}

// flowRun drives a worker that honours the window and a client that
// reads in bursts with pauses, on one goroutine, through a broker whose
// pipes hold few messages: the broker's overflow queue holds the window.
type flowRun struct {
	t        *testing.T
	w        *gatetest.RawWorker
	c        *gatetest.RawClient
	id       []byte // as the client sent it
	wid      []byte // as the worker got it
	client   []byte // client routing id, as the worker got it
	win      wire.Window
	item     []byte
	items    int // items to stream
	sent     wire.Credit
	credit   wire.Credit // as the worker got it
	consumed wire.Credit
	granted  wire.Credit
	msgSize  int64 // one relayed message as the broker queues it, routing id included
	ended    bool
	seq      int
}

func (f *flowRun) produce() {
	for {
		msg, err := f.w.Recv(0)
		if err != nil {
			break
		}
		m, err := wire.ParseWorkerMessage(msg)
		if err != nil {
			f.t.Fatalf("worker: %v", err)
		}
		switch m.Command {
		case wire.CmdHeartbeat:
			f.w.Heartbeat()
		case wire.CmdCredit:
			c, err := wire.ParseCredit(m.Body[0])
			if err != nil {
				f.t.Fatal(err)
			}
			f.credit.Items, f.credit.Bytes = max(f.credit.Items, c.Items), max(f.credit.Bytes, c.Bytes)
		default:
			f.t.Fatalf("worker got %v", m.Command)
		}
	}
	for int(f.sent.Items) < f.items && f.win.MaySend(f.sent, f.credit) {
		f.w.Reply(f.client, f.wid, wire.StreamItemBody(f.item)...)
		f.sent.Items++
		f.sent.Bytes += int64(len(f.item))
	}
	if int(f.sent.Items) == f.items && !f.ended {
		f.w.Reply(f.client, f.wid, wire.StreamEndBody()...)
		f.ended = true
	}
}

// consume reads up to max replies (waiting up to wait for the first) and
// grants credit every half window; it reports whether the stream ended.
func (f *flowRun) consume(max int, wait time.Duration) bool {
	for range max {
		frames, err := f.c.Recv(wait)
		if errors.Is(err, gatetest.ErrTimeout) {
			return false
		}
		if err != nil {
			f.t.Fatal(err)
		}
		wait = 0
		rep, err := wire.ParseClientReply(frames)
		if err != nil || !bytes.Equal(rep.RequestID, f.id) {
			f.t.Fatalf("client got %s (%v)", gatetest.Dump(frames), err)
		}
		kind, payload := wire.ClassifyReply(rep.Body)
		switch kind {
		case wire.ReplyStreamItem:
			if !bytes.Equal(payload, f.item) {
				f.t.Fatalf("item %d: %x", f.consumed.Items, payload)
			}
			if f.msgSize == 0 {
				f.msgSize = int64(len(f.c.ID))
				for _, fr := range frames {
					f.msgSize += int64(len(fr))
				}
			}
			f.consumed.Items++
			f.consumed.Bytes += int64(len(payload))
		case wire.ReplyStreamEnd:
			if int(f.consumed.Items) != f.items {
				f.t.Fatalf("stream ended after %d of %d items", f.consumed.Items, f.items)
			}
			return true
		default:
			f.t.Fatalf("after %d items got %v %q", f.consumed.Items, kind, payload)
		}
		if 2*(f.consumed.Items-f.granted.Items) >= f.win.Items || 2*(f.consumed.Bytes-f.granted.Bytes) >= f.win.Bytes {
			f.seq++
			sendCredit(f.t, f.c, f.seq, f.id, f.consumed.Items, f.consumed.Bytes)
			f.granted = f.consumed
		}
	}
	return false
}

// TestFlowSlowReaderBounded: a 100,000-item relayed stream to a client
// that reads in bursts and pauses, through a broker whose pipes hold 20
// messages and whose per-client message limit is 50: the window (500
// items of 1000 bytes) far exceeds both, yet the call never fails with
// "client too slow", every item arrives in order, and the most the
// broker queued for the client is one window.
func TestFlowSlowReaderBounded(t *testing.T) {
	const hwm, limit, items = 20, 50, 100_000
	// Liveness is not under test: a loaded machine may stall this
	// goroutine (which answers the heartbeats) for a while.
	h := gatetest.StartBroker(t, broker.WithHWM(hwm), broker.WithPeerBuffer(limit, 0), broker.WithLiveness(100))
	w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityFlow)
	c := slowClient(t, h, hwm)
	f := &flowRun{t: t, w: w, c: c, win: wire.Window{Items: 500, Bytes: 500 * 1000}, item: bytes.Repeat([]byte{7}, 1000), items: items}
	f.id = flowID("slow", f.win)
	c.Request("S", f.id, call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	f.wid, f.client = req.RequestID, req.Client
	// Bounded, and generous: the test is about memory bounds, not speed,
	// and 100,000 items take 5 s alone but far longer on a loaded machine.
	deadline := time.Now().Add(12 * gatetest.TestTimeout)
	for round := 0; ; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("stream not finished: %d sent, %d consumed", f.sent.Items, f.consumed.Items)
		}
		f.produce()
		if round%50 == 49 {
			// The reader pauses: the producer fills the window and waits.
			time.Sleep(5 * time.Millisecond)
			f.produce()
			if o := f.credit.Outstanding(f.sent); o.Items > f.win.Items {
				t.Fatalf("producer has %d items outstanding", o.Items)
			}
		}
		if f.consume(100, time.Millisecond) {
			break
		}
	}
	st := stats(h)
	if st.Drops["frontend/client_slow"] != 0 || st.Outcomes[broker.OutcomeFull] != 0 {
		t.Fatalf("drops %v outcomes %v: the call failed as too slow", st.Drops, st.Outcomes)
	}
	// At most one window of items (the window's bytes allow as many here)
	// plus the end marker sat in the broker for this client.
	bound := f.win.Items*f.msgSize + 100
	if st.MaxClientBuffered > bound {
		t.Fatalf("broker queued up to %d bytes for the client, more than one window (%d)", st.MaxClientBuffered, bound)
	}
	if st.MaxClientBuffered < int64(limit)*f.msgSize {
		t.Fatalf("broker queued at most %d bytes: the window never went past the pipes and the message limit, the test proves nothing", st.MaxClientBuffered)
	}
	t.Logf("%d items; most queued for the client %d bytes (%d messages of %d bytes); window %v",
		items, st.MaxClientBuffered, st.MaxClientBuffered/f.msgSize, f.msgSize, f.win)
}

// TestFlowByteBudget: relayed items escape the per-client message limit
// but not the byte limit: past it the call fails as too slow.
func TestFlowByteBudget(t *testing.T) {
	const hwm = 20
	h := gatetest.StartBroker(t, broker.WithHWM(hwm), broker.WithPeerBuffer(50, 64<<10))
	w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityFlow)
	c := slowClient(t, h, hwm)
	id := flowID("budget", wire.Window{Items: 1000, Bytes: 1 << 20})
	c.Request("S", id, call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	item := make([]byte, 1000)
	for range 200 { // within the window, 200 KB: past the 64 KiB budget
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(item)...)
	}
	st := waitStats(t, h, "client failed", func(st broker.Stats) bool { return st.Outcomes[broker.OutcomeFull] == 1 })
	if st.Drops["frontend/client_slow"] == 0 || st.Drops["backend/flow_violation"] != 0 {
		t.Fatalf("drops %v, want frontend/client_slow", st.Drops)
	}
	if m, err := w.NextMessage(recvTimeout); err != nil || m.Command != wire.CmdCancel {
		t.Fatalf("worker got %v (%v), want CANCEL", m.Command, err)
	}
}

// TestFlowOldWorkerOldPolicy: a window-announcing client served by a
// gaterpc/2 worker gets no relay marker, and the per-client message
// limit applies as before: a client that does not read is failed as too
// slow.
func TestFlowOldWorkerOldPolicy(t *testing.T) {
	const hwm, limit = 20, 50
	h := gatetest.StartBroker(t, broker.WithHWM(hwm), broker.WithPeerBuffer(limit, 0))
	w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityAck)
	c := slowClient(t, h, hwm)
	id := flowID("old", wire.Window{Items: 1000, Bytes: 1 << 20})
	c.Request("S", id, call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	if md := requestMD(t, req.RequestID); md[wire.MetaRelay] != "" {
		t.Fatalf("gaterpc/2 worker got gate.relay: %v", md)
	}
	for i := range 500 {
		w.Reply(req.Client, req.RequestID, wire.StreamItemBody(mp(t, i))...)
	}
	st := waitStats(t, h, "client failed", func(st broker.Stats) bool { return st.Outcomes[broker.OutcomeFull] == 1 })
	if st.Drops["frontend/client_slow"] == 0 {
		t.Fatalf("drops %v, want frontend/client_slow", st.Drops)
	}
	if m, err := w.NextMessage(recvTimeout); err != nil || m.Command != wire.CmdCancel {
		t.Fatalf("worker got %v (%v), want CANCEL", m.Command, err)
	}
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	var last []byte
	for deadline := time.Now().Add(recvTimeout); ; {
		if time.Now().After(deadline) {
			t.Fatal("no error marker")
		}
		rep := c.NextReply(recvTimeout)
		if kind, payload := wire.ClassifyReply(rep.Body); kind.Final() {
			last = payload
			break
		}
	}
	var triple []any
	if err := msgpack.Unmarshal(last, &triple); err != nil || len(triple) != 3 || triple[0] != "BusyWorkerError" {
		t.Fatalf("error marker %q (%v), want BusyWorkerError", last, err)
	}
}

// TestFlowThroughObserver: with an observer rewriting the metadata at
// dispatch, the relay marker is still added, a gate.relay forged by the
// observer still replaced, and credit still reaches the worker.
func TestFlowThroughObserver(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithObserver(relayForger{}))
	w := capabilityWorker(t, h, "S", 1, wire.GateCapabilityFlow)
	c := h.RawClient(t)
	id := flowID("ob", wire.Window{Items: 4, Bytes: 4096})
	c.Request("S", id, call(t, "gen")...)
	req := w.NextRequest(recvTimeout)
	if md := requestMD(t, req.RequestID); md[wire.MetaRelay] != "1" {
		t.Fatalf("worker got metadata %v, want gate.relay=1", md)
	}
	item := mp(t, "x")
	w.Reply(req.Client, req.RequestID, wire.StreamItemBody(item)...)
	c.NextReply(recvTimeout)
	sendCredit(t, c, 1, id, 1, int64(len(item)))
	if got := nextCredit(t, w, req.RequestID); got != (wire.Credit{Items: 1, Bytes: int64(len(item))}) {
		t.Fatalf("CREDIT %+v", got)
	}
	w.Reply(req.Client, req.RequestID, wire.StreamEndBody()...)
	if kind, _ := wire.ClassifyReply(c.NextReply(recvTimeout).Body); kind != wire.ReplyStreamEnd {
		t.Fatalf("got %v, want the stream end", kind)
	}
}

// TestFlowSilentClient: the producer of a relayed request waits for
// credit, so the broker sends the client nothing and would not notice it
// gone. A client silent for heartbeat × liveness has its relayed requests
// cancelled at the worker; one that keeps sending keepalives keeps them.
func TestFlowSilentClient(t *testing.T) {
	h := gatetest.StartBroker(t) // heartbeat 100 ms, liveness 3
	w := capabilityWorker(t, h, "S", 2, wire.GateCapabilityFlow)
	live, silent := h.RawClient(t), h.RawClient(t)
	liveID, silentID := flowID("live", wire.Window{Items: 4, Bytes: 4096}), flowID("silent", wire.Window{Items: 4, Bytes: 4096})
	live.Request("S", liveID, call(t, "gen")...)
	silent.Request("S", silentID, call(t, "gen")...)
	reqs := map[string]wire.WorkerMessage{}
	for range 2 {
		r := w.NextRequest(recvTimeout)
		reqs[string(r.Client)] = r
	}
	start := time.Now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the live client's keepalives, as a gate client sends them
		defer close(done)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
				live.Request(wire.InternalService, []byte(fmt.Sprintf("ka-%d", i)), mp(t, "keepalive"), mp(t, []any{[]byte("heartbeat")}), []byte{0x80})
			}
		}
	}()
	defer func() { // before the test ends, even when it fails
		close(stop)
		<-done
	}()
	m, err := w.NextMessage(5 * time.Second)
	if err != nil {
		t.Fatalf("no CANCEL for the silent client's request: %v", err)
	}
	if m.Command != wire.CmdCancel || !bytes.Contains(m.RequestID, []byte("silent")) {
		t.Fatalf("got %v of request %q, want the CANCEL of the silent client's request", m.Command, m.RequestID)
	}
	t.Logf("cancelled %v after the silent client's last message (heartbeat %v)", time.Since(start).Round(time.Millisecond), gatetest.Heartbeat)
	var lr wire.WorkerMessage
	for _, r := range reqs {
		if bytes.Contains(r.RequestID, []byte("live")) {
			lr = r
		}
	}
	// More heartbeat intervals than liveness (3), counted by the broker's
	// own heartbeats: the live client's request stays.
	w.ExpectQuiet(7)
	w.Reply(lr.Client, lr.RequestID, wire.StreamEndBody()...)
	for {
		rep := live.NextReply(recvTimeout)
		if kind, _ := wire.ClassifyReply(rep.Body); kind == wire.ReplyStreamEnd {
			break
		}
	}
}

// relayForger is an observer that sets gate.relay in every dispatch.
type relayForger struct{}

func (relayForger) Observe(*gate.Request, time.Time) broker.RequestObserver { return relayForger{} }
func (relayForger) Dispatch(d *broker.Dispatch)                             { d.Metadata[wire.MetaRelay] = "forged by an observer" }
func (relayForger) Reply(*gate.Reply)                                       {}
func (relayForger) Finish(time.Time, string, error)                         {}
