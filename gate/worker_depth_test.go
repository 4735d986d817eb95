package gate_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// TestExecutorDepthHook: with a one-slot pool, calls that wait for the slot
// are reported as queue depth, and the depth returns to 0 when they ran.
func TestExecutorDepthHook(t *testing.T) {
	svc, err := gate.NewService("Depth", "queue depth")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	if err := gate.Func0(svc, "hold", func(ctx context.Context) (int, error) {
		select {
		case <-release:
			return 1, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		maxDepth int
		last     = map[string]int{}
	)
	hook := func(service, executor string, depth int) {
		mu.Lock()
		defer mu.Unlock()
		if service != "Depth" {
			t.Errorf("hook service = %q, want Depth", service)
		}
		last[executor] = depth
		if executor == "pool" && depth > maxDepth {
			maxDepth = depth
		}
	}
	snapshot := func() (int, map[string]int) {
		mu.Lock()
		defer mu.Unlock()
		cp := map[string]int{}
		for k, v := range last {
			cp[k] = v
		}
		return maxDepth, cp
	}

	h := gatetest.StartBrokerOn(t, gatetest.Inproc, broker.WithHeartbeat(time.Second))
	w, err := gate.NewWorker(h.Backend, svc, gate.WithZMQContext(h.Ctx), gate.WithPoolSize(1),
		gate.WithExecutorDepthHook(hook), gate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if _, d := snapshot(); d["pool"] != 0 || len(d) != 1 {
		t.Fatalf("after NewWorker the hook saw %v, want pool=0 reported once", d)
	}
	gatetest.ServeWorker(t, w)
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(h.Ctx), gate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for { // wait for the worker's READY to reach the broker
		if _, err := c.Call(ctx, "Depth.get_interfaces"); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("worker never became callable: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	const calls = 3
	results := make(chan error, calls)
	for range calls {
		go func() {
			_, err := c.Call(ctx, "Depth.hold")
			results <- err
		}()
	}
	// One call holds the slot, the other two wait for it.
	for {
		if m, _ := snapshot(); m >= calls-1 {
			break
		}
		if ctx.Err() != nil {
			m, d := snapshot()
			t.Fatalf("max pool depth %d (last %v), want %d", m, d, calls-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for range calls {
		if err := <-results; err != nil {
			t.Fatalf("Call = %v", err)
		}
	}
	if m, d := snapshot(); m != calls-1 || d["pool"] != 0 {
		t.Fatalf("after the calls: max %d, last %v; want max %d and pool back to 0", m, d, calls-1)
	}
}

// TestWorkerConnected: Connected is false before Serve, true once the broker
// answered READY, and false again after Close.
func TestWorkerConnected(t *testing.T) {
	svc, err := gate.NewService("Conn", "connected")
	if err != nil {
		t.Fatal(err)
	}
	h := gatetest.StartBrokerOn(t, gatetest.Inproc, broker.WithHeartbeat(time.Second))
	w, err := gate.NewWorker(h.Backend, svc, gate.WithZMQContext(h.Ctx), gate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if w.Connected() {
		t.Fatal("Connected before Serve")
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	for deadline := time.Now().Add(10 * time.Second); !w.Connected(); {
		if time.Now().After(deadline) {
			t.Fatal("never Connected after Serve")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Close()
	if err := <-errc; !errors.Is(err, gate.ErrClosed) {
		t.Fatalf("Serve = %v, want ErrClosed", err)
	}
	if w.Connected() {
		t.Fatal("still Connected after Close")
	}
}
