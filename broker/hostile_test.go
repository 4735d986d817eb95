package broker_test

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// TestHostile is the hostile-input battery over tcp://127.0.0.1: each
// attack is dropped or answered and counted, an unrelated echo call
// still answers within echoBound (the figure is logged), and the broker
// holds nothing for the attacker afterwards. GATE_HOSTILE=long runs the
// floods larger.
func TestHostile(t *testing.T) {
	e := []byte{}
	s := func(v string) []byte { return []byte(v) }

	t.Run("malformed and truncated frames", func(t *testing.T) {
		env := startHostile(t)
		front := [][][]byte{
			{},                                 // nothing but the routing id
			{e},                                // delimiter only
			{s("x"), s("MDPC01"), s("echo")},   // no delimiter
			{e, s("MDPC")},                     // truncated header
			{e, s("MDPC01")},                   // header only
			{e, s("MDPC01"), s("echo")},        // no request id
			{e, s("MDPC01"), e, s("r")},        // empty service
			{e, {0xff, 0x00, 0x01}, s("echo")}, // binary garbage
		}
		back := [][][]byte{
			{e, s("MDPW")},                                   // truncated header
			{e, s("MDPW01")},                                 // no command
			{e, s("MDPW01"), {0x03}},                         // REPLY without client
			{e, s("MDPW01"), {0x03}, s("c")},                 // REPLY without delimiter
			{e, s("MDPW01"), {0x03}, s("c"), e, s("r")},      // REPLY without body
			{e, s("MDPW01"), {0x01}},                         // READY without text
			{e, s("MDPW01"), {0x01}, s("S:d:notanumber")},    // READY bad capacity
			{e, s("MDPW01"), {0x04}, s("extra"), s("extra")}, // HEARTBEAT with frames
		}
		rounds := scale(20, 2000)
		bad := env.h.RawClient(t)
		for range rounds {
			for _, m := range front {
				if len(m) == 0 {
					continue // a DEALER cannot send an empty message
				}
				bad.Send(m...)
			}
			for _, m := range back {
				env.echo.Send(m...)
			}
		}
		env.roundTrip(t, "during")
		want := uint64(rounds * (len(front) - 1 + len(back)))
		st := waitStats(t, env.h, "every message dropped", func(st broker.Stats) bool { return total(st.Drops) >= want })
		if got := total(st.Drops); got != want {
			t.Errorf("%d drops, want %d: %v", got, want, st.Drops)
		}
		for k := range st.Drops {
			if !strings.HasPrefix(k, "frontend/") && !strings.HasPrefix(k, "backend/") {
				t.Errorf("drop key %q", k)
			}
		}
		bad.Sync()
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("unknown commands", func(t *testing.T) {
		env := startHostile(t)
		stranger := env.h.RawWorker(t)
		n := scale(50, 5000)
		for i := range n {
			cmd := []byte{byte(0x08 + i%0xf0)} // 0x08..0xf7: none is a command
			env.echo.Send(e, s("MDPW01"), cmd)
			stranger.Send(e, s("MDPW01"), cmd)
		}
		env.roundTrip(t, "during")
		env.waitDrops(t, "backend/command", uint64(2*n))
		// an unknown function of the broker's own service is answered
		c := env.h.RawClient(t)
		c.Request(wire.InternalService, rid(1), call(t, "shutdown_everything")...)
		wantException(t, c.NextReply(recvTimeout), "AttributeError", "")
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("forged REPLY from an unregistered worker", func(t *testing.T) {
		env := startHostile(t)
		forger := env.h.RawWorker(t)
		victim := env.h.RawClient(t)
		victim.Request("echo", rid(1), call(t, "echo", "secret")...)
		req := env.echo.NextRequest(recvTimeout)
		n := scale(20, 2000)
		for range n {
			forger.Reply(req.Client, req.RequestID, result(t, "forged"))
		}
		env.waitDrops(t, "backend/unknown_worker", uint64(n))
		// told to go away, once per heartbeat interval at most
		if d := countDisconnects(forger, 200*time.Millisecond); d < 1 || d > 4 {
			t.Errorf("forger got %d DISCONNECTs, want 1 (rate-limited)", d)
		}
		victim.Sync() // no forged reply reached the victim
		env.echo.Reply(req.Client, req.RequestID, result(t, "genuine"))
		rep := victim.NextReply(recvTimeout)
		if !bytes.Equal(rep.Body[0], result(t, "genuine")) {
			t.Fatalf("victim got %x", rep.Body[0])
		}
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("reply carrying another client's request id", func(t *testing.T) {
		env := startHostile(t)
		rogue := readyWorker(t, env.h, "echo", 8) // registered for the same service
		victim := env.h.RawClient(t)
		// The echo worker is busy with the victim's request; the rogue
		// learnt the victim's routing id and request id somehow.
		victim.Request("echo", rid(7), call(t, "echo")...)
		var req wire.WorkerMessage
		var owner, other *gatetest.RawWorker
		if m, err := env.echo.NextMessage(300 * time.Millisecond); err == nil && m.Command == wire.CmdRequest {
			req, owner, other = m, env.echo, rogue
		} else {
			req, owner, other = rogue.NextRequest(recvTimeout), rogue, env.echo
		}
		n := scale(20, 2000)
		for range n {
			other.Reply(req.Client, req.RequestID, result(t, "stolen"))
		}
		env.waitDrops(t, "backend/unknown_request", uint64(n))
		victim.Sync() // no forged reply reached the victim
		owner.Reply(req.Client, req.RequestID, result(t, "genuine"))
		if rep := victim.NextReply(recvTimeout); !bytes.Equal(rep.Body[0], result(t, "genuine")) {
			t.Fatalf("victim got %x", rep.Body[0])
		}
		env.settled(t, 2)
		rogue.Disconnect()
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("READY flood", func(t *testing.T) {
		const maxServices = 32
		env := startHostile(t, broker.WithMaxServices(maxServices))
		n := scale(200, 900) // one zmq context: ZMQ_MAX_SOCKETS is 1023
		flood := make([]*gatetest.RawWorker, n)
		for i := range flood {
			flood[i] = env.h.RawWorker(t)
			flood[i].Ready("flood-"+string(rid(i)), "flood", 1<<62)
		}
		env.roundTrip(t, "during")
		// "echo" holds one of the maxServices places.
		env.waitDrops(t, "backend/too_many_services", uint64(n-(maxServices-1)))
		st := env.settled(t, maxServices)
		if len(st.Services) != maxServices {
			t.Errorf("%d services, want the cap %d", len(st.Services), maxServices)
		}
		if st.Drops["backend/capacity_clamped"] != maxServices-1 {
			t.Errorf("capacity_clamped = %d, want %d", st.Drops["backend/capacity_clamped"], maxServices-1)
		}
		// the same identity READY again: banned
		twice := env.h.RawWorker(t)
		twice.Ready("echo", "again", 1)
		twice.Ready("echo", "again", 1)
		waitStats(t, env.h, "duplicate READY banned", func(st broker.Stats) bool { return st.Expirations["duplicate_ready"] == 1 })
		env.roundTrip(t, "after")
	})

	t.Run("heartbeat flood", func(t *testing.T) {
		env := startHostile(t)
		stranger := env.h.RawWorker(t)
		n := scale(20000, 1000000)
		before := stats(env.h).HeartbeatsReceived
		start := time.Now()
		for range n {
			env.echo.Heartbeat()
			stranger.Heartbeat()
		}
		env.roundTrip(t, "during")
		waitStats(t, env.h, "heartbeats counted", func(st broker.Stats) bool {
			return st.HeartbeatsReceived-before >= uint64(n) && st.Drops["backend/unknown_worker"] >= uint64(n)
		})
		el := time.Since(start)
		st := stats(env.h)
		if st.Drops["backend/unknown_worker"] != uint64(n) {
			t.Errorf("unknown_worker drops = %d, want %d", st.Drops["backend/unknown_worker"], n)
		}
		// one DISCONNECT per heartbeat interval (gatetest.Heartbeat), not per message
		limit := int(el/gatetest.Heartbeat) + 2
		if d := countDisconnects(stranger, 200*time.Millisecond); d < 1 || d > limit {
			t.Errorf("stranger got %d DISCONNECTs in %v, want 1..%d", d, el, limit)
		}
		t.Logf("%d heartbeats from each of two peers in %v", n, el)
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("kwargs keys starting with __", func(t *testing.T) {
		env := startHostile(t)
		victim := env.h.RawClient(t)
		victim.Request("echo", rid(1), call(t, "echo")...)
		req := env.echo.NextRequest(recvTimeout)
		// The attacker names the victim in the broker's own keyword
		// arguments: the broker takes the caller from the routing id,
		// never from kwargs, so this cancels nothing.
		attacker := env.h.RawClient(t)
		kw := mp(t, map[string]any{"__client_id": req.Client, "__request_id": rid(1)})
		attacker.Request(wire.InternalService, rid(2), mp(t, "cancel"), mp(t, []any{rid(1)}), kw)
		rep := attacker.NextReply(recvTimeout)
		var m struct {
			Result any `msgpack:"result"`
		}
		if err := msgpack.Unmarshal(rep.Body[0], &m); err != nil || m.Result != false {
			t.Fatalf("attacker's Gate.cancel = %v (%v), want false", m.Result, err)
		}
		// kwargs of a worker call pass through untouched: the worker refuses them
		attacker.Request("echo", rid(3), mp(t, "echo"), mp(t, []any{}), mp(t, map[string]any{"__init__": 1}))
		dunder := env.echo.NextRequest(recvTimeout)
		if !bytes.Equal(dunder.Body[2], mp(t, map[string]any{"__init__": 1})) {
			t.Errorf("kwargs frame changed in transit: %x", dunder.Body[2])
		}
		env.echo.Reply(dunder.Client, dunder.RequestID, result(t, nil))
		attacker.NextReply(recvTimeout)
		env.echo.Reply(req.Client, req.RequestID, result(t, "genuine"))
		if r := victim.NextReply(recvTimeout); !bytes.Equal(r.Body[0], result(t, "genuine")) {
			t.Fatalf("victim got %x", r.Body[0])
		}
		if st := stats(env.h); st.Outcomes["cancelled"] != 0 {
			t.Errorf("cancelled = %d, want 0", st.Outcomes["cancelled"])
		}
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("decompression bomb", func(t *testing.T) {
		env := startHostile(t, broker.WithMaxMsgSize(4<<20))
		// 1 GiB of zeros gzipped to ~1 MB: the broker relays the chunk as
		// opaque bytes (it never inflates HugeData) and its heap stays put.
		// gzip members concatenate into one stream: 1,024 copies of a
		// 1 MiB-of-zeros member inflate to 1 GiB.
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
		_, _ = zw.Write(make([]byte, 1<<20))
		_ = zw.Close()
		bomb := bytes.NewBuffer(bytes.Repeat(member.Bytes(), 1024))
		victim := env.h.RawClient(t)
		victim.Request("echo", rid(1), call(t, "blob")...)
		req := env.echo.NextRequest(recvTimeout)
		env.echo.Reply(req.Client, req.RequestID, wire.HugeChunkBody(bomb.Bytes())...)
		env.echo.Reply(req.Client, req.RequestID, wire.HugeEndBody()...)
		chunk := victim.NextReply(recvTimeout)
		if k, p := wire.ClassifyReply(chunk.Body); k != wire.ReplyHugeChunk || len(p) != bomb.Len() {
			t.Fatalf("relayed %v of %d bytes, want the %d-byte chunk", k, len(p), bomb.Len())
		}
		if end := victim.NextReply(recvTimeout); !mustKind(end.Body).Final() {
			t.Fatalf("no HugeData end relayed")
		}
		// A bomb over the message cap is dropped and counted.
		victim.Request("echo", rid(2), call(t, "blob")...)
		req = env.echo.NextRequest(recvTimeout)
		big := bytes.Repeat(member.Bytes(), 3<<20/member.Len()) // 3 MB in two frames of the reply: 6 MB > 4 MiB
		env.echo.Reply(req.Client, req.RequestID, wire.HugeChunkBody(big)[0], big, big)
		env.waitDrops(t, "backend/oversize", 1)
		env.echo.Reply(req.Client, req.RequestID, result(t, "small"))
		victim.NextReply(recvTimeout)
		t.Logf("bomb: %d bytes on the wire, 1 GiB inflated", bomb.Len())
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("oversized and frame-count floods", func(t *testing.T) {
		env := startHostile(t, broker.WithMaxMsgSize(1<<20), broker.WithMaxFrames(64))
		bad := env.h.RawClient(t)
		frame := bytes.Repeat([]byte{'x'}, 600<<10)
		n := scale(5, 50)
		for range n {
			bad.Send(e, s("MDPC01"), s("echo"), s("r"), frame, frame) // 1.2 MB > 1 MiB
		}
		many := make([][]byte, scale(200000, 2000000))
		for i := range many {
			many[i] = e
		}
		bad.Send(many...)
		env.echo.Send(append([][]byte{e, s("MDPW01"), {0x03}, s("c"), e, s("r")}, many[:1000]...)...)
		env.roundTrip(t, "during")
		env.waitDrops(t, "frontend/oversize", uint64(n))
		env.waitDrops(t, "frontend/too_many_frames", 1)
		env.waitDrops(t, "backend/too_many_frames", 1)
		// one frame over libzmq's ZMQ_MAXMSGSIZE: libzmq drops the
		// connection (not counted by the broker), nothing is answered
		huge := env.h.RawClient(t)
		huge.Send(e, s("MDPC01"), s("echo"), s("r"), bytes.Repeat([]byte{'y'}, 2<<20))
		huge.Sync() // after libzmq reconnects it, the keepalive is the first answer
		bad.Sync()
		env.settled(t, 1)
		env.roundTrip(t, "after")
	})

	t.Run("10 MB READY names", func(t *testing.T) {
		env := startHostile(t)
		name := strings.Repeat("n", 10<<20)
		n := scale(5, 20)
		for range n {
			w := env.h.RawWorker(t)
			w.Ready(name, "big", 1)
			wantDisconnect(t, w, "10 MB READY")
		}
		env.waitDrops(t, "backend/ready_name_too_long", uint64(n))
		env.roundTrip(t, "during")
		c := env.h.RawClient(t)
		c.Request(wire.InternalService, rid(1), call(t, "get_services")...)
		if rep := c.NextReply(recvTimeout); len(rep.Body[0]) > 1024 {
			t.Errorf("get_services reply is %d bytes", len(rep.Body[0]))
		}
		st := env.settled(t, 1)
		if len(st.Services) != 1 {
			t.Errorf("services %v, want only echo", st.Services)
		}
		env.roundTrip(t, "after")
	})
}

func total(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func mustKind(body [][]byte) wire.ReplyKind {
	k, _ := wire.ClassifyReply(body)
	return k
}
