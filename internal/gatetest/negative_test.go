package gatetest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// recorder is a testing.TB whose Fatalf records the failure and ends the
// goroutine, so that a test can check that a helper fails.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// failure runs fn in a goroutine and returns the Fatalf message ("" if
// fn returned normally).
func (r *recorder) failure(fn func()) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

// readyWorker registers a raw worker for service S with capacity 2.
func readyWorker(t *testing.T, h *gatetest.Harness, tb testing.TB) *gatetest.RawWorker {
	w := &gatetest.RawWorker{RawPeer: gatetest.Dial(tb, h.Ctx, h.Backend, gatetest.NewID("w")), AutoHeartbeat: true}
	w.Ready("S", "s", 2)
	gatetest.WaitFor(t, gatetest.TestTimeout, "worker registered", func() bool { return h.Broker.Stats().Workers == 1 })
	return w
}

// Sync fails when a reply to an earlier request comes before its answer,
// and passes when nothing does.
func TestSyncOrdersAfterEarlierReplies(t *testing.T) {
	h := gatetest.StartBroker(t)
	rec := &recorder{TB: t}
	c := &gatetest.RawClient{RawPeer: gatetest.Dial(rec, h.Ctx, h.Frontend, gatetest.NewID("c"))}
	if msg := rec.failure(c.Sync); msg != "" {
		t.Fatalf("Sync on a quiet client failed: %s", msg)
	}
	c.Request(wire.InternalService, []byte("earlier"), gatetest.CallBody(t, "get_services")...)
	if msg := rec.failure(c.Sync); msg == "" {
		t.Fatal("Sync passed although the reply to an earlier request came first")
	}
}

// ExpectQuiet fails when the broker sent the worker a request, and passes
// (after heartbeats) when it did not.
func TestExpectQuietSeesWork(t *testing.T) {
	h := gatetest.StartBroker(t)
	rec := &recorder{TB: t}
	w := readyWorker(t, h, rec)
	if msg := rec.failure(func() { w.ExpectQuiet(2) }); msg != "" {
		t.Fatalf("ExpectQuiet on an idle worker failed: %s", msg)
	}
	c := h.RawClient(t)
	c.Request("S", []byte("r1"), gatetest.CallBody(t, "f")...)
	c.Sync()
	if msg := rec.failure(func() { w.ExpectQuiet(2) }); msg == "" {
		t.Fatal("ExpectQuiet passed although a REQUEST was waiting")
	}
}
