package gate_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// A client started together with its workers waits for the service
// instead of retrying calls until ErrNoService stops; a worker waits until
// the broker has registered it (what a readiness probe reports).
func ExampleClient_WaitService() {
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	quiet := slog.New(slog.DiscardHandler)
	b, _ := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend("inproc://wait-front"),
		broker.WithBackend("inproc://wait-back"), broker.WithLogger(quiet))
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background()) }()
	defer func() { b.Close(); <-served }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := gate.NewClient("inproc://wait-front", gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	// The worker starts in the background, as in a deployment.
	svc, _ := gate.NewService("Clock", "")
	_ = gate.Func0(svc, "ping", func(context.Context) (string, error) { return "pong", nil })
	w, _ := svc.NewWorker("inproc://wait-back", gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	worked := make(chan error, 1)
	go func() { worked <- w.Serve(context.Background()) }()
	defer func() { w.Close(); <-worked }()

	if err := w.WaitRegistered(ctx); err != nil {
		fmt.Println("worker:", err)
		return
	}
	fmt.Println("worker registered:", w.Connected())

	if err := c.WaitService(ctx, "Clock"); err != nil {
		fmt.Println("client:", err)
		return
	}
	v, err := gate.CallAs[string](ctx, c, "Clock.ping")
	fmt.Println(v, err)
	// Output:
	// worker registered: true
	// pong <nil>
}
