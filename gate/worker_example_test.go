package gate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// Greeter's exported methods that take a context become RPC methods
// (RegisterStruct): Hello is called as "hello".
type Greeter struct{ Greeting string }

// HelloOptions receives keyword arguments: a struct last parameter.
type HelloOptions struct {
	Shout bool `msgpack:"shout"`
}

func (g *Greeter) Hello(_ context.Context, name string, o HelloOptions) (string, error) {
	if name == "" {
		return "", gate.NewException("ValueError", "name is empty")
	}
	s := g.Greeting + ", " + name
	if o.Shout {
		s = strings.ToUpper(s)
	}
	return s, nil
}

func ExampleWorker() {
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	quiet := slog.New(slog.DiscardHandler)
	front, back := "inproc://ex-worker-front", "inproc://ex-worker-back"
	b, _ := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend(front), broker.WithBackend(back), broker.WithLogger(quiet))
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- b.Serve(context.Background()) }()
	defer func() { b.Close(); <-brokerDone }()

	// A service with methods from a struct, served by one worker.
	svc, _ := gate.NewService("Greeter", "says hello")
	if err := svc.RegisterStruct(&Greeter{Greeting: "Hello"}); err != nil {
		panic(err)
	}
	w, _ := svc.NewWorker(back, gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Serve(context.Background()) }()

	c, _ := gate.NewClient(front, gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitService(ctx, "Greeter"); err != nil {
		panic(err)
	}

	fmt.Println(c.Call(ctx, "Greeter.hello", "gate"))
	fmt.Println(c.CallKW(ctx, "Greeter.hello", []any{"gate"}, map[string]any{"shout": true}))
	_, err := c.Call(ctx, "Greeter.hello", "")
	var ge *gate.Error
	if errors.As(err, &ge) {
		fmt.Println(ge.Class, ge.Message)
	}

	// Graceful stop: finish in-flight calls, then DISCONNECT.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	fmt.Println(w.Shutdown(sctx), <-workerDone)
	// Output:
	// Hello, gate <nil>
	// HELLO, GATE <nil>
	// ValueError ValueError('name is empty')
	// <nil> gate: closed
}
