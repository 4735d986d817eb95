package broker

import (
	"io"
	"log/slog"
	"testing"

	"github.com/gaterpc/gate/internal/wire"
)

// TestAdmit drives the backend checks directly: a READY must name an
// allowed service, and a registered worker's messages must come from the
// key it registered with (a routing id reused by another key is refused
// and the worker removed).
func TestAdmit(t *testing.T) {
	const keyA, keyB = "keyA", "keyB" // admit compares keys; it does not parse them
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := &loop{
		opts:        &options{},
		log:         log,
		closed:      true, // no sockets: disconnect is a no-op
		services:    map[string]*service{},
		workers:     map[string]*worker{},
		expirations: map[string]uint64{},
		drops:       map[string]uint64{},
	}
	l.sec = &security{
		opts:     &secOptions{back: true},
		log:      log,
		workers:  compile([]AuthorizedKey{{Key: keyA, Services: []string{"Pay"}}, {Key: keyB, Services: []string{"Log"}}}),
		failures: map[string]uint64{},
		keys:     map[string]string{},
	}
	id := []byte("w1")
	ready := func(svc string) wire.WorkerMessage { return wire.WorkerMessage{Command: wire.CmdReady, Service: svc} }

	l.sec.lastUID = keyB
	if l.admit(id, nil, ready("Pay")) {
		t.Fatal("keyB admitted for Pay")
	}
	if l.sec.failures["backend/service_not_allowed"] != 1 || l.drops["backend/service_not_allowed"] != 1 {
		t.Fatalf("failures %v, drops %v; want one service_not_allowed each", l.sec.failures, l.drops)
	}
	l.sec.lastUID = keyA
	if !l.admit(id, nil, ready("Pay")) {
		t.Fatal("keyA refused for Pay")
	}
	s := &service{name: "Pay", workers: 1, capacity: 1}
	w := &worker{id: id, key: string(id), svc: s, capacity: 1, reqs: map[string]*request{}}
	l.services["Pay"], l.workers[w.key] = s, w
	hb := wire.WorkerMessage{Command: wire.CmdHeartbeat}
	if !l.admit(id, w, hb) {
		t.Fatal("heartbeat from the registered key refused")
	}
	l.sec.lastUID = keyB
	if l.admit(id, w, hb) {
		t.Fatal("heartbeat from another key under the same routing id admitted")
	}
	if l.sec.failures["backend/key_mismatch"] != 1 || !w.dead || l.workers[w.key] != nil || l.expirations[GoneProtocol] != 1 {
		t.Fatalf("after a key mismatch: failures %v, dead %v, expirations %v", l.sec.failures, w.dead, l.expirations)
	}
	l.sec.lastUID = "" // inproc: no CURVE, nothing to check
	if !l.admit([]byte("w2"), nil, ready("Anything")) {
		t.Fatal("inproc READY refused")
	}
}

func TestAllowList(t *testing.T) {
	a := compile([]AuthorizedKey{{Key: "k1", Services: []string{"A"}}, {Key: "k1", Services: []string{"B"}},
		{Key: "k2"}, {Key: "k2", Services: []string{"C"}}, {Key: AnyKey, Services: []string{"M"}}})
	for _, tt := range []struct {
		key, svc string
		want     bool
	}{
		{"k1", "A", true}, {"k1", "B", true}, {"k1", "C", false},
		{"k2", "anything", true},
		{"k3", "M", true}, {"k3", "A", false}, {"k1", "M", true},
	} {
		if got := a.mayServe(tt.key, tt.svc); got != tt.want {
			t.Errorf("mayServe(%s, %s) = %v, want %v", tt.key, tt.svc, got, tt.want)
		}
	}
	if !a.admits("k3") {
		t.Error("AnyKey does not admit an unknown key")
	}
	if b := compile([]AuthorizedKey{{Key: "k1"}}); b.admits("k2") {
		t.Error("a list without AnyKey admits an unknown key")
	}
}
