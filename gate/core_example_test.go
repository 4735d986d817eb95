package gate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gaterpc/gate/gate"
)

// ExampleChain shows the order: the first middleware is the outermost.
func ExampleChain() {
	trace := func(name string) gate.Middleware {
		return func(next gate.Handler) gate.Handler {
			return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
				fmt.Println("enter", name)
				defer fmt.Println("leave", name)
				return next.ServeRPC(ctx, req, w)
			})
		}
	}
	h := gate.Chain(trace("a"), trace("b"))(gate.HandlerFunc(func(context.Context, *gate.Request, gate.ReplyWriter) error {
		fmt.Println("handler")
		return nil
	}))
	_ = h.ServeRPC(context.Background(), &gate.Request{Service: "Demo", Method: "echo"}, nil)
	// Output:
	// enter a
	// enter b
	// handler
	// leave b
	// leave a
}

// ExampleCodeOf classifies errors from any source the same way.
func ExampleCodeOf() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println(gate.CodeOf(nil))
	fmt.Println(gate.CodeOf(ctx.Err()))
	fmt.Println(gate.CodeOf(fmt.Errorf("call: %w", gate.ErrBrokerLost)))
	fmt.Println(gate.CodeOf(gate.NewException("BusyWorkerError", "No idle worker.")))
	fmt.Println(gate.CodeOf(errors.New("anything else")))
	// Output:
	// OK
	// CANCELLED
	// UNAVAILABLE
	// RESOURCE_EXHAUSTED
	// UNKNOWN
}

func TestNewException(t *testing.T) {
	e := gate.NewException("ValueError", "it's")
	if e.Message != `ValueError("it's")` || e.Code != gate.InvalidArgument {
		t.Fatalf("NewException = %+v", e)
	}
}
