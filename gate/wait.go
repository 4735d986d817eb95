package gate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// registration tracks whether the broker has spoken to a worker since its
// last READY: the broker registered the worker and is alive. The worker's
// loop calls heard on every message from the broker except DISCONNECT,
// and lost when the connection is closed (reconnect, broker silent,
// DISCONNECT, Close).
type registration struct {
	ok atomic.Bool // read without the lock on every message
	mu sync.Mutex
	ch chan struct{} // closed while ok; replaced when lost
}

// heard marks the worker registered. Loop goroutine only; one atomic load
// when already registered.
func (r *registration) heard() {
	if r.ok.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok.Store(true)
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	close(r.ch)
}

// lost marks the worker unregistered.
func (r *registration) lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ok.Load() {
		r.ok.Store(false)
		r.ch = nil
	}
}

func (r *registration) registered() bool { return r.ok.Load() }

// wait returns a channel closed once the worker is registered.
func (r *registration) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

// Connected reports whether the worker is registered with a live broker:
// the broker has spoken to it (a heartbeat, which brokers send at once in
// answer to READY, or a request) since its last READY. It turns false
// when the worker drops the connection: the broker stayed silent for
// Settings.Heartbeat × Settings.Liveness, sent DISCONNECT, or the worker
// stopped. Binaries use it for readiness probes. Safe for concurrent use.
func (w *Worker) Connected() bool { return w.reg.registered() }

// WaitRegistered blocks until the worker is registered with a live broker
// (see [Worker.Connected]) or ctx is done, and returns ctx's error in the
// latter case. Call it after starting [Worker.Serve]; it returns
// [ErrClosed] once the worker has stopped. Safe for concurrent use.
func (w *Worker) WaitRegistered(ctx context.Context) error {
	for {
		select {
		case <-w.reg.wait():
			if w.reg.registered() {
				return nil
			}
			// Registered and lost again in between: wait for the next one.
		case <-w.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitServiceAttempt bounds one query of WaitService, so that a 0.2.12
// broker with SECURE=True, which does not answer Gate.service_stats,
// costs one attempt before the fallback to Gate.query_service.
const waitServiceAttempt = 3 * time.Second

// WaitService blocks until the broker has a live worker for the service
// name, or ctx is done (it then returns ctx's error, joined with the
// last query error if there was one). It polls the broker with
// exponential backoff (from 20 ms to 1 s, with jitter): a gate broker
// through Gate.service_stats, which counts the service's live workers; a
// gaterpc 0.2.12 broker through Gate.query_service, which answers as soon
// as a worker of the service has once registered.
//
// Use it at startup, before the first call, instead of retrying calls
// until ErrNoService stops. It returns [ErrClosed] at once when c is
// closed. Safe for concurrent use.
func (c *Client) WaitService(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("gate: WaitService: %w: empty service name", ErrInvalidOption)
	}
	backoff, stats := 20*time.Millisecond, true
	var last error
	for {
		var ok bool
		var err error
		if stats {
			ok, err = c.serviceHasWorker(ctx, name)
			if err != nil && ctx.Err() == nil && (CodeOf(err) == Unimplemented || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout)) {
				stats = false // a 0.2.12 broker: no Gate.service_stats
				continue
			}
		} else {
			actx, cancel := context.WithTimeout(ctx, waitServiceAttempt)
			_, err = c.QueryService(actx, name)
			cancel()
			ok = err == nil
			if errors.Is(err, ErrNoService) {
				err = nil
			}
		}
		if ok {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		if err != nil {
			last = err
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			if last != nil {
				return errors.Join(ctx.Err(), last)
			}
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// serviceHasWorker asks Gate.service_stats whether name has a live worker.
func (c *Client) serviceHasWorker(ctx context.Context, name string) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, waitServiceAttempt)
	defer cancel()
	st, err := c.ServiceStats(actx, name)
	if err != nil {
		return false, err
	}
	for _, s := range st {
		if s.Name == name && len(s.Workers) > 0 {
			return true, nil
		}
	}
	return false, nil
}
