package gate

import (
	"context"
	"time"
)

// Dispatch is what a broker reports to its middleware when it assigns a
// request to a worker, before the request is sent.
type Dispatch struct {
	Service  string
	Enqueued time.Time // when the broker queued the request
	Assigned time.Time // when a worker with free capacity was chosen
	// Metadata is sent to the worker inside the request id. A hook may
	// replace entries (tracing injects the dispatch span's context).
	Metadata map[string]string
	// Worker is the routing id of the worker chosen, when known (set for
	// broker observers). It belongs to the broker: copy it to keep it.
	Worker []byte
}

// DispatchHook observes a dispatch. It runs on the request's own goroutine,
// never on the broker's socket loop, and must not block for long: the
// request is sent to the worker when it returns. When a worker is known to
// be free as the request arrives, a gate broker runs the hook just before
// assigning it (saving a round trip through the loop); Assigned is then the
// arrival time and, if the reserved worker is taken meanwhile, the request
// queues with its metadata already set.
type DispatchHook func(ctx context.Context, d *Dispatch)

type dispatchKey struct{}

// WithDispatchHook returns a ctx that makes a broker call hook when the
// request in ctx is assigned to a worker. Broker middleware installs it
// before calling the next handler. A later hook wraps earlier ones: all run,
// outermost first.
func WithDispatchHook(ctx context.Context, hook DispatchHook) context.Context {
	if prev := DispatchHookFrom(ctx); prev != nil {
		outer := prev
		inner := hook
		hook = func(ctx context.Context, d *Dispatch) { outer(ctx, d); inner(ctx, d) }
	}
	return context.WithValue(ctx, dispatchKey{}, hook)
}

// DispatchHookFrom returns the hook installed in ctx, or nil.
func DispatchHookFrom(ctx context.Context) DispatchHook {
	h, _ := ctx.Value(dispatchKey{}).(DispatchHook)
	return h
}
