package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Retry defaults, used for the zero fields of a [RetryPolicy].
const (
	DefaultRetryMaxAttempts    = 3
	DefaultRetryInitialBackoff = 50 * time.Millisecond
	DefaultRetryMaxBackoff     = time.Second
	DefaultRetryMultiplier     = 2.0
	DefaultRetryBudgetTokens   = 10.0
	DefaultRetryBudgetRatio    = 0.1
)

// RetryPolicy says how a [Client] retries idempotent calls (see
// [WithRetry] and [Idempotent]). The zero value is usable: every zero field
// takes its Default* constant.
//
// Only a call whose ctx carries [Idempotent] is retried, and only after a
// failure that means the request did not complete at a worker:
//
//   - [ErrBrokerLost]: the broker went silent, the connection dropped, or a
//     new broker answers on the same address;
//   - WorkerLostError: the worker that had the request was lost before its
//     final reply;
//   - ServiceUnAvailableError ([ErrNoService]): no live worker serves the
//     service (for example while it restarts).
//
// Application errors, timeouts, cancellations, ResourceExhausted and
// everything else are returned at once. The ctx deadline (or the client's
// default timeout) bounds all attempts together: a backoff that would end
// after it is not waited for, and the last attempt's error is returned (or
// the deadline's, when it passes during an attempt).
//
// The budget is a token bucket shared by all calls of the client, as in
// gRPC's retry throttling: it starts full at BudgetTokens; every failure
// of an idempotent call that could be retried takes one token, every
// successful call gives BudgetRatio back; a retry is made only while more
// than half of the tokens are left. So while a service is down, a client
// sends at most about BudgetTokens/2 retries before it stops amplifying
// the outage, and it retries again once successes have refilled the
// bucket.
type RetryPolicy struct {
	// MaxAttempts is the most attempts of one call, the first included
	// (1 disables retries).
	MaxAttempts int
	// The wait before retry n (n = 1, 2...) is a random duration in
	// [0, min(InitialBackoff×Multiplier^(n−1), MaxBackoff)] ("full
	// jitter").
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
	// BudgetTokens is the size of the retry budget; BudgetRatio the tokens
	// a successful call gives back.
	BudgetTokens float64
	BudgetRatio  float64
}

// WithRetry makes the client retry calls marked with [Idempotent]
// according to p (see [RetryPolicy]). Without it no call is retried.
// Negative fields, or a Multiplier below 1, give an error wrapping
// [ErrInvalidOption]. Retries apply to [Client.Call], [Client.CallKW],
// [CallAs] and the [ServiceClient] call methods, whose replies reach the
// caller only once the call is complete; [Client.Stream] is not retried,
// since its items are delivered as they arrive.
func WithRetry(p RetryPolicy) ClientOption {
	return clientOptionFunc(func(o *clientOptions) {
		if err := p.validate(); err != nil {
			o.common.errs = append(o.common.errs, err)
			return
		}
		o.retry = &p
	})
}

func (p *RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("%w: retry: MaxAttempts %d must be >= 0", ErrInvalidOption, p.MaxAttempts)
	case p.InitialBackoff < 0 || p.MaxBackoff < 0:
		return fmt.Errorf("%w: retry: negative backoff", ErrInvalidOption)
	case p.Multiplier != 0 && (p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0)):
		return fmt.Errorf("%w: retry: Multiplier %v must be >= 1", ErrInvalidOption, p.Multiplier)
	case p.BudgetTokens < 0 || p.BudgetRatio < 0 || math.IsNaN(p.BudgetTokens) || math.IsNaN(p.BudgetRatio):
		return fmt.Errorf("%w: retry: negative budget", ErrInvalidOption)
	}
	return nil
}

// withDefaults returns p with every zero field set to its default.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultRetryMaxAttempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = DefaultRetryInitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultRetryMaxBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultRetryMultiplier
	}
	if p.BudgetTokens == 0 {
		p.BudgetTokens = DefaultRetryBudgetTokens
	}
	if p.BudgetRatio == 0 {
		p.BudgetRatio = DefaultRetryBudgetRatio
	}
	return p
}

type idempotentKey struct{}

// Idempotent returns a ctx that marks the calls made with it as idempotent:
// running one twice has the same effect as running it once, so a client
// built with [WithRetry] may send it again after a failure that means it
// did not complete. Without WithRetry the mark has no effect.
func Idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

// IsIdempotent reports whether ctx carries the [Idempotent] mark.
func IsIdempotent(ctx context.Context) bool {
	v, _ := ctx.Value(idempotentKey{}).(bool)
	return v
}

// Attempt returns which attempt of its call r is at the client: 1 for the
// first, 2 for the first retry, and so on (see [WithRetry]). It is 0 at
// the broker and the worker, and for a Request built by middleware.
// Telemetry records it on client spans and counts retries by outcome.
func (r *Request) Attempt() int {
	if r.spec == nil {
		return 0
	}
	return r.spec.attempt + 1
}

// retryable reports whether err means the request did not complete at a
// worker, so that an idempotent call may be sent again.
func retryable(err error) bool {
	if errors.Is(err, ErrBrokerLost) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Class {
		case "WorkerLostError", "ServiceUnAvailableError":
			return true
		}
	}
	return false
}

// retrier is a client's retry policy and budget. It is safe for concurrent
// use.
type retrier struct {
	p RetryPolicy

	mu     sync.Mutex
	tokens float64
}

func newRetrier(p *RetryPolicy) *retrier {
	if p == nil {
		return nil
	}
	d := p.withDefaults()
	return &retrier{p: d, tokens: d.BudgetTokens}
}

// failed takes a token for a retryable failure and reports whether the
// budget allows a retry.
func (r *retrier) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = max(r.tokens-1, 0)
	return r.tokens > r.p.BudgetTokens/2
}

func (r *retrier) succeeded() {
	r.mu.Lock()
	r.tokens = min(r.tokens+r.p.BudgetRatio, r.p.BudgetTokens)
	r.mu.Unlock()
}

// backoff is the wait before retry n (1-based).
func (r *retrier) backoff(n int) time.Duration {
	d := float64(r.p.InitialBackoff) * math.Pow(r.p.Multiplier, float64(n-1))
	d = min(d, float64(r.p.MaxBackoff))
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// serveWithRetry runs req through the middleware chain, once, or again
// after a retryable failure while the policy, the budget and ctx allow it.
// Each attempt gets a fresh request id, metadata map and collector (a
// collector delivers nothing to the caller before the call ends, so a
// partial stream or HugeData reply of a failed attempt is dropped).
func (c *Client) serveWithRetry(ctx context.Context, req *Request) (*collector, error) {
	spec := req.spec
	for n := 0; ; n++ {
		r := req
		if n > 0 {
			cp := *req
			cp.ID = c.newID()
			cp.Metadata = map[string]string{}
			s := *spec
			s.attempt = n
			cp.spec = &s
			r = &cp
		}
		w := &collector{max: c.set.HugeDataMaxSize}
		err := c.handler.ServeRPC(ctx, r, w)
		rt := c.retry
		if rt == nil {
			return w, err
		}
		if err == nil {
			rt.succeeded() // any call's success refills the budget
			return w, nil
		}
		if !IsIdempotent(ctx) || !retryable(err) || !rt.failed() || n+1 >= rt.p.MaxAttempts {
			return w, err
		}
		wait := rt.backoff(n + 1)
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= wait {
			return w, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return w, err
		case <-c.closing:
			t.Stop()
			return w, err
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "gate: retrying idempotent call", slog.String("rpc.method", req.Info().FullMethod()),
			slog.Int("gaterpc.attempt", n+2), slog.String("error", err.Error()))
	}
}
