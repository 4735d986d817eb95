package broker

import (
	"strings"
	"time"

	"github.com/gaterpc/gate/internal/wire"
)

// A worker the broker forgets while it may still be alive (expired for
// silence, banned for a duplicate READY, its connection briefly gone)
// keeps running the requests it had. A 0.2.12 worker with its _reconnect
// flag registers again under the same routing id and still answers them;
// counting it as empty would let the broker send it more than its
// capacity. So the broker remembers, per routing id and for a while, the
// requests such a worker held (its ghosts). A READY from that id within
// the while starts the new registration with one detached request per
// ghost: each holds a unit of capacity until the worker's final reply for
// it (dropped), or until the worker goes away again.
//
// Gate workers (wire.GateCapability) are not remembered: they reconnect
// under a fresh routing id, and cancel their calls when they do.

// maxGhostIDs bounds the routing ids remembered.
const maxGhostIDs = 4096

type ghost struct {
	keys  []string // wire keys (client + request id) of the requests held
	until time.Time
}

// ghostTTL is how long a forgotten worker's requests are remembered: two
// liveness windows or two queue timeouts, whichever is longer (60 s by
// default). A 0.2.12 worker with _reconnect comes back at once.
func (l *loop) ghostTTL() time.Duration {
	return max(2*l.opts.queueTimeout, 2*l.opts.heartbeat*time.Duration(l.opts.liveness))
}

// rememberGhosts records what w held when it was forgotten for reason.
func (l *loop) rememberGhosts(w *worker, reason string) {
	if w.gate || len(w.reqs) == 0 || reason == GoneShutdown || reason == GoneDisconnect && !w.unreachable {
		return
	}
	if l.ghosts == nil {
		l.ghosts = make(map[string]*ghost)
	}
	if _, ok := l.ghosts[w.key]; !ok && len(l.ghosts) >= maxGhostIDs {
		return
	}
	g := &ghost{keys: make([]string, 0, len(w.reqs)), until: l.now.Add(l.ghostTTL())}
	for k := range w.reqs {
		g.keys = append(g.keys, strings.Clone(k)) // k is in the request's arena
	}
	l.ghosts[w.key] = g
}

// restoreGhosts gives a worker registering under a remembered routing id
// one detached request per request it held before.
func (l *loop) restoreGhosts(w *worker) {
	g := l.ghosts[w.key]
	if g == nil {
		return
	}
	delete(l.ghosts, w.key)
	if l.now.After(g.until) {
		return
	}
	for _, k := range g.keys {
		if _, dup := w.reqs[k]; dup {
			continue
		}
		r := &request{svcName: w.svc.name, worker: w, wireKey: k, state: stInFlight, detached: true, heapIdx: -1, arrived: l.now}
		w.reqs[k] = r
		w.used++
		w.svc.inflight++
		l.inflight++
	}
}

// pruneGhosts forgets the ghosts whose while is over.
func (l *loop) pruneGhosts() {
	for k, g := range l.ghosts {
		if l.now.After(g.until) {
			delete(l.ghosts, k)
		}
	}
}

// ghostReply takes a final reply from a routing id the broker does not
// know (it was forgotten and has not registered again yet) off that id's
// ghosts: the worker is done with that request.
func (l *loop) ghostReply(id []byte, m wire.WorkerMessage) {
	g := l.ghosts[string(id)]
	if g == nil {
		return
	}
	if kind, _ := wire.ClassifyReply(m.Body); !kind.Final() {
		return
	}
	k := string(l.key(m.Client, m.RequestID))
	for i, gk := range g.keys {
		if gk == k {
			g.keys = append(g.keys[:i], g.keys[i+1:]...)
			return
		}
	}
}
