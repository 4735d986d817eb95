package gate_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// attempts records req.Attempt() of every call the client middleware sees.
type attempts struct {
	mu   sync.Mutex
	seen []int
	errs []error
}

func (a *attempts) mw() gate.Middleware {
	return func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			a.mu.Lock()
			a.seen = append(a.seen, req.Attempt())
			a.mu.Unlock()
			err := next.ServeRPC(ctx, req, w)
			a.mu.Lock()
			a.errs = append(a.errs, err)
			a.mu.Unlock()
			return err
		})
	}
}

func (a *attempts) get() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.seen...)
}

// fastRetry retries often and quickly, with a budget that never runs out
// in these tests unless they set one.
func fastRetry(max int) gate.RetryPolicy {
	return gate.RetryPolicy{MaxAttempts: max, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, BudgetTokens: 1000}
}

func TestRetryNoWorkerUntilItComes(t *testing.T) {
	h := clBroker(t, gatetest.Inproc)
	var a attempts
	c := clNewClient(t, h, gate.WithRetry(fastRetry(1000)), gate.WithMiddleware(a.mw()))
	ctx := clCtx(t)

	// Not marked idempotent: the broker's ServiceUnAvailableError comes back at once.
	if _, err := c.Call(ctx, "E2E.echo", 1); !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("Call without a worker = %v, want ErrNoService", err)
	}
	if got := a.get(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("attempts of a call not marked idempotent = %v, want [1]", got)
	}

	// Marked: retried until the worker registers.
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(300 * time.Millisecond)
	}()
	done := make(chan error, 1)
	go func() {
		v, err := c.Call(gate.Idempotent(ctx), "E2E.echo", 7)
		if err == nil && v != int64(7) {
			err = errors.New("wrong value")
		}
		done <- err
	}()
	<-started
	clStartWorker(t, h, clService(t))
	if err := <-done; err != nil {
		t.Fatalf("idempotent Call across the worker's start = %v, want 7", err)
	}
	got := a.get()
	if len(got) < 3 {
		t.Fatalf("attempts = %v, want several", got)
	}
	for i, n := range got[1:] {
		if n != i+1 {
			t.Fatalf("attempt numbers = %v, want 1 then 1, 2, 3...", got)
		}
	}
}

// TestRetryWorkerLost: a worker that goes away mid-call fails the call
// with WorkerLostError; an idempotent call is sent again and answered by
// the other worker, a call not marked idempotent is not.
func TestRetryWorkerLost(t *testing.T) {
	for _, idem := range []bool{true, false} {
		name := map[bool]string{true: "idempotent", false: "not-idempotent"}[idem]
		t.Run(name, func(t *testing.T) {
			h := clBroker(t, gatetest.Inproc)
			var a attempts
			c := clNewClient(t, h, gate.WithRetry(fastRetry(5)), gate.WithMiddleware(a.mw()))

			var calls atomic.Int32
			entered := make(chan struct{}, 1)
			svcA, err := gate.NewService("R", "")
			if err != nil {
				t.Fatal(err)
			}
			// Worker A: takes the call and never answers.
			if err := gate.Func0(svcA, "get", func(ctx context.Context) (string, error) {
				calls.Add(1)
				select {
				case entered <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return "", ctx.Err()
			}); err != nil {
				t.Fatal(err)
			}
			wa := clStartWorker(t, h, svcA)
			waitWorkers(t, h, "R", 1)
			ctx := clCtx(t)
			if idem {
				ctx = gate.Idempotent(ctx)
			}
			done := make(chan error, 1)
			var got any
			go func() {
				var err error
				got, err = c.Call(ctx, "R.get")
				done <- err
			}()
			<-entered
			svcB, err := gate.NewService("R", "")
			if err != nil {
				t.Fatal(err)
			}
			if err := gate.Func0(svcB, "get", func(context.Context) (string, error) { calls.Add(1); return "B", nil }); err != nil {
				t.Fatal(err)
			}
			clStartWorker(t, h, svcB)
			waitWorkers(t, h, "R", 2)
			wa.Close() // DISCONNECT: the broker fails A's call with WorkerLostError

			err = <-done
			if !idem {
				var ge *gate.Error
				if !errors.As(err, &ge) || ge.Class != "WorkerLostError" {
					t.Fatalf("Call = %v, want WorkerLostError", err)
				}
				if n := len(a.get()); n != 1 {
					t.Fatalf("%d attempts, want 1", n)
				}
				return
			}
			if err != nil || got != "B" {
				t.Fatalf("idempotent Call = %v, %v; want B from the other worker", got, err)
			}
			if at := a.get(); len(at) != 2 || at[1] != 2 {
				t.Fatalf("attempts = %v (%v), want [1 2]", at, a.errs)
			}
		})
	}
}

func waitWorkers(t testing.TB, h *gatetest.Harness, svc string, n int) {
	t.Helper()
	deadline := time.Now().Add(clE2ETimeout)
	for time.Now().Before(deadline) {
		for _, s := range h.Broker.Stats().Services {
			total := 0
			for _, k := range s.Workers {
				total += k
			}
			if s.Name == svc && total >= n {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("service %s never had %d workers", svc, n)
}

func TestRetryNotOnApplicationError(t *testing.T) {
	env := clNewEnv(t, gatetest.Inproc, gate.WithRetry(fastRetry(5)))
	var a attempts
	c := clNewClient(t, env.h, gate.WithRetry(fastRetry(5)), gate.WithMiddleware(a.mw()))
	_, err := c.Call(gate.Idempotent(clCtx(t)), "E2E.fail", "boom")
	var ge *gate.Error
	if !errors.As(err, &ge) || ge.Class != "ValueError" {
		t.Fatalf("Call = %v, want the ValueError", err)
	}
	if at := a.get(); len(at) != 1 {
		t.Fatalf("attempts = %v, want one", at)
	}
}

// TestRetryBudget: with a budget of 4 tokens, retries stop once half of
// them are spent, whatever MaxAttempts says.
func TestRetryBudget(t *testing.T) {
	h := clBroker(t, gatetest.Inproc)
	var a attempts
	p := fastRetry(100)
	p.BudgetTokens = 4
	c := clNewClient(t, h, gate.WithRetry(p), gate.WithMiddleware(a.mw()))
	ctx := gate.Idempotent(clCtx(t))
	if _, err := c.Call(ctx, "E2E.echo", 1); !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("Call = %v, want ErrNoService", err)
	}
	// 4 → 3 tokens: retry; 3 → 2: not more than half, stop.
	if at := a.get(); len(at) != 2 {
		t.Fatalf("attempts = %v, want 2", at)
	}
	if _, err := c.Call(ctx, "E2E.echo", 1); !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("Call = %v, want ErrNoService", err)
	}
	if at := a.get(); len(at) != 3 {
		t.Fatalf("attempts = %v, want 3: an empty budget allows no retry", at)
	}
}

// TestRetryDeadlineBoundsAttempts: the ctx deadline bounds all attempts.
func TestRetryDeadlineBoundsAttempts(t *testing.T) {
	h := clBroker(t, gatetest.Inproc)
	c := clNewClient(t, h, gate.WithRetry(fastRetry(1<<30)))
	ctx, cancel := context.WithTimeout(gate.Idempotent(context.Background()), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, "E2E.echo", 1)
	// The last attempt's error, or the deadline's if it ran out during an
	// attempt.
	if !errors.Is(err, gate.ErrNoService) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want ErrNoService or DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Call returned after %v; the 400ms deadline should bound it", d)
	}
}

func TestWithRetryInvalid(t *testing.T) {
	for _, p := range []gate.RetryPolicy{
		{MaxAttempts: -1}, {InitialBackoff: -1}, {Multiplier: 0.5}, {BudgetTokens: -1},
	} {
		if _, err := gate.NewClient("inproc://x", gate.WithRetry(p)); !errors.Is(err, gate.ErrInvalidOption) {
			t.Errorf("NewClient(WithRetry(%+v)) = %v, want ErrInvalidOption", p, err)
		}
	}
}
