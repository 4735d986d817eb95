package broker

import (
	"context"
	"log/slog"
	"maps"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// Flow control (docs/flow-control.md). When the client's request id
// carries a window (wire.MetaWindow) and the chosen worker announced
// wire.GateCapabilityFlow, dispatch marks the request id with
// wire.MetaRelay and keeps a flowRec: the worker then holds its stream
// items and HugeData chunks to the window, the client grants credit with
// Gate.credit, and the broker relays that credit to the worker as CREDIT.
// The broker checks the producer's rule on every item or chunk it
// relays; a worker that breaks it fails the call (flowViolation).

// A relayed request's producer waits for the client's credit, so the
// broker may send its client nothing for a long time and would never learn
// (from a failed send) that the client is gone. It therefore watches the
// clients of relayed requests: a gate client sends Gate.keepalive at least
// once per heartbeat interval of its own, so a client silent for the
// broker's heartbeat × liveness has vanished (or its link is down), and its
// relayed requests are cancelled at the worker (outcome "cancelled").

// flowClient is a client with relayed requests.
type flowClient struct {
	seen time.Time // the last message from it
	reqs map[*request]struct{}
}

// watchClient starts watching r's client for silence (r is relayed).
func (l *loop) watchClient(r *request) {
	if l.flowClients == nil {
		l.flowClients = make(map[string]*flowClient)
	}
	fc := l.flowClients[string(r.client)]
	if fc == nil {
		fc = &flowClient{seen: l.now, reqs: make(map[*request]struct{})}
		l.flowClients[string(r.client)] = fc
	}
	fc.reqs[r] = struct{}{}
}

// unwatchClient forgets r (finished); a client without relayed requests
// is no longer watched.
func (l *loop) unwatchClient(r *request) {
	fc := l.flowClients[string(r.client)]
	if fc == nil {
		return
	}
	delete(fc.reqs, r)
	if len(fc.reqs) == 0 {
		delete(l.flowClients, string(r.client))
	}
}

// clientHeard records a message from a client (frontend).
func (l *loop) clientHeard(id []byte) {
	if len(l.flowClients) == 0 {
		return
	}
	if fc := l.flowClients[string(id)]; fc != nil {
		fc.seen = l.now
	}
}

// expireSilentClients cancels the relayed requests of clients silent for
// ttl.
func (l *loop) expireSilentClients(ttl time.Duration) {
	for id, fc := range l.flowClients {
		if l.now.Sub(fc.seen) < ttl {
			continue
		}
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "client silent, cancelling its flow-controlled requests",
			slog.String("client.id", hexID([]byte(id))), slog.Int("requests", len(fc.reqs)),
			slog.Duration("silent", l.now.Sub(fc.seen)))
		for r := range fc.reqs {
			l.cancelSilent(r)
		}
		delete(l.flowClients, id)
	}
}

// cancelSilent ends a relayed request whose client went silent: as
// Gate.cancel does (relayed requests run on gaterpc/3 workers, which
// understand CANCEL).
func (l *loop) cancelSilent(r *request) {
	err := gate.Errorf(gate.Canceled, "the client went silent")
	switch r.state {
	case stQueued:
	case stInFlight:
		if !l.cancelOnWorker(r) {
			return
		}
		l.finish(r, OutcomeCancelled, nil, err)
		l.detach(r)
		return
	default:
		return
	}
	l.finish(r, OutcomeCancelled, nil, err)
}

// flowRec is the flow state of one relayed request.
type flowRec struct {
	win    wire.Window
	sent   wire.Credit // items and payload bytes taken from the worker (relayed or queued for the client)
	credit wire.Credit // the client's cumulative credit, at most sent
}

// take counts a stream item (each item of a batch) or HugeData chunk
// taken from the worker, checking the producer's rule before each one. It
// reports false when the worker sent beyond the window or a batch does
// not split into msgpack values.
func (f *flowRec) take(body [][]byte, payload []byte) bool {
	if !wire.IsStreamBatch(body) {
		if !f.win.MaySend(f.sent, f.credit) {
			return false
		}
		f.sent.Items++
		f.sent.Bytes += int64(len(payload))
		return true
	}
	for rest := payload; len(rest) > 0; {
		item, next, err := codec.SplitValue(rest)
		if err != nil || !f.win.MaySend(f.sent, f.credit) {
			return false
		}
		f.sent.Items++
		f.sent.Bytes += int64(len(item))
		rest = next
	}
	return true
}

// flowMeta returns the metadata to send to w for a request carrying md:
// without a client-supplied wire.MetaRelay, and with wire.MetaRelay set
// when md's window parses and w understands CREDIT (then flow is the new
// record). changed reports whether md differs from the input (the id
// must be re-encoded); md itself is never modified.
func flowMeta(w *worker, md map[string]string) (out map[string]string, flow *flowRec, changed bool) {
	_, forged := md[wire.MetaRelay]
	var win wire.Window
	relay := false
	if w.flow {
		if s, ok := md[wire.MetaWindow]; ok {
			var err error
			win, err = wire.ParseWindow(s)
			relay = err == nil
		}
	}
	if !forged && !relay {
		return md, nil, false
	}
	out = maps.Clone(md)
	delete(out, wire.MetaRelay)
	if relay {
		out[wire.MetaRelay] = wire.RelayCredit
		if w.batch {
			out[wire.MetaRelay] = wire.RelayBatch
		}
		flow = &flowRec{win: win}
	}
	return out, flow, true
}

// flowViolation fails a relayed request whose worker sent an item or
// chunk while the window was used up: the client gets a BusyWorkerError
// (ResourceExhausted) in the reply's layout, the worker a CANCEL, and the
// rest of the worker's replies for it are dropped.
func (l *loop) flowViolation(r *request, kind wire.ReplyKind) {
	l.drop("backend", "flow_violation")
	r.lastKind = kind
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "worker broke flow control, failing the call",
		slog.String("gaterpc.service", r.svcName), slog.String("worker.id", hexID(r.worker.id)),
		slog.String("window", r.flow.win.String()), slog.Int64("sent_items", r.flow.sent.Items),
		slog.Int64("credit_items", r.flow.credit.Items))
	l.abort(r, OutcomeFull, "BusyWorkerError",
		"BusyWorkerError("+pyRepr("flow control violated: the worker sent beyond the reader's window")+")")
}

// credit serves Gate.credit(request_id, items, bytes) from client. It is
// one-way: nothing is answered. The request is looked up by its id as
// the client sent it (or its base id); the credit is capped at what the
// broker has relayed, kept as a maximum, and relayed to the worker as
// CREDIT when it grew. Malformed arguments are dropped and counted as
// "frontend/bad_credit", a request that is not live under flow control as
// "frontend/unknown_request".
func (l *loop) credit(client []byte, nargs int, args []byte) {
	if nargs != 3 {
		l.drop("frontend", "bad_credit")
		return
	}
	rid, _, rest, err := codec.ReadStrOrBin(args)
	var c wire.Credit
	if err == nil {
		c.Items, rest, err = codec.ReadUint(rest)
	}
	if err == nil {
		c.Bytes, _, err = codec.ReadUint(rest)
	}
	if err != nil || len(rid) == 0 {
		l.drop("frontend", "bad_credit")
		return
	}
	base, _, err := wire.DecodeRequestID(rid)
	if err != nil {
		l.drop("frontend", "bad_credit")
		return
	}
	r := l.reqs[string(l.key(client, base))]
	if r == nil || r.flow == nil || r.state != stInFlight || r.detached {
		l.drop("frontend", "unknown_request")
		return
	}
	f := r.flow
	c.Items = max(f.credit.Items, min(c.Items, f.sent.Items))
	c.Bytes = max(f.credit.Bytes, min(c.Bytes, f.sent.Bytes))
	if c == f.credit {
		return
	}
	f.credit = c
	l.creditBuf = wire.AppendCredit(l.creditBuf[:0], c)
	l.toWorker(r.worker, cmdCredit, r.client, frameEmpty, []byte(r.wireKey[1+len(r.client):]), l.creditBuf)
}
