package gate_test

import (
	"context"
	"testing"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// freshCtx is middleware that calls the next handler with a ctx it builds
// from scratch (not derived from the one it got), keeping only the
// deadline: per-call state must not travel in the ctx.
func freshCtx(next gate.Handler) gate.Handler {
	return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
		fresh := context.WithoutCancel(context.Background())
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			fresh, cancel = context.WithDeadline(fresh, d)
			defer cancel()
		}
		return next.ServeRPC(fresh, req, w)
	})
}

func TestFreshCtxMiddlewareKeepsCallState(t *testing.T) {
	h := clBroker(t, gatetest.Inproc)
	clStartWorker(t, h, clService(t), gate.WithMiddleware(freshCtx))
	c := clNewClient(t, h, gate.WithMiddleware(freshCtx))
	clWaitReady(t, c)
	ctx := clCtx(t)

	s, err := gate.StreamAs[int](ctx, c, "E2E.count", 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for v, err := range s.All() { // typed items: panicked when the spec was lost
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 5 || got[4] != 4 {
		t.Fatalf("StreamAs[int] items = %v, want 0..4", got)
	}

	type pair struct {
		Args   []int          `msgpack:"args"`
		Kwargs map[string]int `msgpack:"kwargs"`
	}
	p, err := gate.CallAs[pair](ctx, c, "E2E.echo_kw", 1, 2, gate.Kwargs{"k": 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Args) != 2 || p.Args[1] != 2 || p.Kwargs["k"] != 3 {
		t.Fatalf("CallAs = %+v", p)
	}

	v, err := gate.CallAs[[]int](ctx, c, "E2E.count", 3) // a collected stream
	if err != nil || len(v) != 3 || v[2] != 2 {
		t.Fatalf("CallAs[[]int] of a stream = %v, %v", v, err)
	}
	if _, err := c.Call(ctx, "E2E.nosuch"); gate.CodeOf(err) != gate.Unimplemented {
		t.Fatalf("unknown method: %v (code %v), want Unimplemented", err, gate.CodeOf(err))
	}
}
