package faults

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
)

// Bounds, in heartbeat intervals. The broker expires a silent worker after
// 3 intervals; the rest is slack for a loaded 2-core machine.
const (
	workerLossBound = 10 // a killed worker's callers get WorkerLostError
	recoveryBound   = 10 // the service answers again
)

// TestWorkerKilled SIGKILLs the only worker while a call, a stream and a
// HugeData reply are in progress: the caller gets WorkerLostError within
// workerLossBound intervals, and nothing stays pending at the client or in
// flight at the broker.
func TestWorkerKilled(t *testing.T) {
	cases := []struct {
		name string
		// run starts the call, signals started once the worker is busy
		// with it, and returns its error.
		run func(ctx context.Context, c *gate.Client, started func()) error
	}{
		{"call", func(ctx context.Context, c *gate.Client, started func()) error {
			errc := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, "demo.sleep", 60.0)
				errc <- err
			}()
			started()
			return <-errc
		}},
		{"stream", func(ctx context.Context, c *gate.Client, started func()) error {
			s, err := c.Stream(ctx, "demo.count", 1<<40)
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := s.Recv(); err != nil {
				return err
			}
			started()
			for {
				if _, err := s.Recv(); err != nil {
					return err
				}
			}
		}},
		{"huge", func(ctx context.Context, c *gate.Client, started func()) error {
			// Kill at the first chunk, seen by a client middleware.
			_, err := c.Call(context.WithValue(ctx, hugeStarted{}, started), "demo.blob", 32<<20)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t)
			w := startWorker(t, tcp(b.back))
			c := newClient(t, tcp(b.front), gate.WithMiddleware(hugeWatch))
			waitService(t, c)

			var killedAt atomic.Int64
			var once sync.Once
			started := func() {
				once.Do(func() {
					if tc.name == "call" {
						b.waitMetric(t, "gaterpc_broker_inflight_requests", func(v float64) bool { return v >= 1 })
					}
					killedAt.Store(time.Now().UnixNano())
					w.signal(t, syscall.SIGKILL)
				})
			}
			err := tc.run(testCtx(t), c, started)
			if killedAt.Load() == 0 {
				t.Fatalf("call ended before the kill: %v", err)
			}
			d := time.Since(time.Unix(0, killedAt.Load()))
			t.Logf("worker SIGKILL mid-%s: %v after %v (%.1f intervals)", tc.name, err, d.Round(time.Millisecond), intervals(d))
			if !isClass(err, "WorkerLostError") {
				t.Fatalf("error = %v, want WorkerLostError", err)
			}
			if intervals(d) > workerLossBound {
				t.Errorf("WorkerLostError after %.1f intervals, want at most %d", intervals(d), workerLossBound)
			}
			b.idle(t)
			if n := b.metric(t, "gaterpc_broker_live_workers"); n != 0 {
				t.Errorf("broker still counts %v live workers", n)
			}
		})
	}
}

type hugeStarted struct{}

// hugeWatch calls the func in the ctx under hugeStarted at the first
// HugeData chunk of the call.
func hugeWatch(next gate.Handler) gate.Handler {
	return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
		f, _ := ctx.Value(hugeStarted{}).(func())
		if f == nil {
			return next.ServeRPC(ctx, req, w)
		}
		return next.ServeRPC(ctx, req, gate.ReplyWriterFunc(func(ctx context.Context, r *gate.Reply) error {
			if r.Kind == gate.ReplyHugeChunk {
				f()
			}
			return w.Send(ctx, r)
		}))
	})
}

// TestWorkerStopped SIGSTOPs one of two workers under a steady load of
// idempotent calls (with retries): the stopped worker is out of rotation
// within a few intervals, every call completes (answered by the healthy
// worker, or retried after WorkerLostError), and after SIGCONT the worker
// registers again.
func TestWorkerStopped(t *testing.T) {
	b := startBroker(t)
	w1 := startWorker(t, tcp(b.back))
	startWorker(t, tcp(b.back))
	c := newClient(t, tcp(b.front), gate.WithRetry(gate.RetryPolicy{MaxAttempts: 5, BudgetTokens: 100}))
	waitService(t, c)
	b.waitMetric(t, "gaterpc_broker_live_workers", func(v float64) bool { return v == 2 })

	ctx := gate.Idempotent(testCtx(t))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var slowest atomic.Int64 // ns, calls started after out-of-rotation
	var outAt atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_, err := c.Call(ctx, "demo.echo", "x")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
				if o := outAt.Load(); o != 0 && t0.UnixNano() > o {
					d := int64(time.Since(t0))
					for {
						s := slowest.Load()
						if d <= s || slowest.CompareAndSwap(s, d) {
							break
						}
					}
				}
			}
		}()
	}
	time.Sleep(5 * hb)
	stoppedAt := time.Now()
	w1.signal(t, syscall.SIGSTOP)
	out := b.waitMetric(t, "gaterpc_broker_stalled_workers", func(v float64) bool { return v >= 1 })
	outAt.Store(out.UnixNano())
	expired := b.waitMetric(t, "gaterpc_broker_live_workers", func(v float64) bool { return v == 1 })
	time.Sleep(5 * hb)
	contAt := time.Now()
	w1.signal(t, syscall.SIGCONT)
	back := b.waitMetric(t, "gaterpc_broker_live_workers", func(v float64) bool { return v == 2 })
	time.Sleep(2 * hb)
	close(stop)
	wg.Wait()

	t.Logf("SIGSTOP: stalled (out of rotation) after %v (%.1f intervals), expired after %v (%.1f intervals); "+
		"slowest call started after that: %v; SIGCONT: registered again after %v (%.1f intervals); %d calls ok, %d failed",
		out.Sub(stoppedAt).Round(time.Millisecond), intervals(out.Sub(stoppedAt)),
		expired.Sub(stoppedAt).Round(time.Millisecond), intervals(expired.Sub(stoppedAt)),
		time.Duration(slowest.Load()).Round(time.Millisecond),
		back.Sub(contAt).Round(time.Millisecond), intervals(back.Sub(contAt)), ok.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d idempotent calls failed (first: %v), want none", n, firstErr.Load())
	}
	if intervals(out.Sub(stoppedAt)) > 5 {
		t.Errorf("stopped worker out of rotation after %.1f intervals, want at most 5", intervals(out.Sub(stoppedAt)))
	}
	if s := time.Duration(slowest.Load()); intervals(s) > 5 {
		t.Errorf("a call started after the worker left rotation took %v, want at most 5 intervals", s)
	}
	if intervals(back.Sub(contAt)) > recoveryBound {
		t.Errorf("resumed worker registered after %.1f intervals, want at most %d", intervals(back.Sub(contAt)), recoveryBound)
	}
	b.idle(t)
}
