package gate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// A method returning HugeBinary sends n bytes read from a reader as
// HugeData, without holding them: here a file-like source, which the
// worker closes when the reply is over. The caller receives the bytes.
func ExampleHugeBinary() {
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	quiet := slog.New(slog.DiscardHandler)
	front, back := "inproc://ex-huge-front", "inproc://ex-huge-back"
	b, _ := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend(front), broker.WithBackend(back), broker.WithLogger(quiet))
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- b.Serve(context.Background()) }()
	defer func() { b.Close(); <-brokerDone }()

	svc, _ := gate.NewService("Files", "")
	_ = gate.Func1(svc, "read", func(_ context.Context, name string) (gate.HugeValue, error) {
		data := strings.Repeat(name, 3) // stands for an *os.File and its Stat().Size()
		return gate.HugeBinary(int64(len(data)), io.NopCloser(strings.NewReader(data))), nil
	})
	_ = gate.Func1(svc, "encoded", func(_ context.Context, _ int) (gate.HugeValue, error) {
		// HugeFrom reads a msgpack encoding: here the fixarray [1, 2, 3].
		return gate.HugeFrom(bytes.NewReader([]byte{0x93, 0x01, 0x02, 0x03})), nil
	})
	w, _ := svc.NewWorker(back, gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Serve(context.Background()) }()
	defer func() { w.Close(); <-workerDone }()

	c, _ := gate.NewClient(front, gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for { // wait for the worker's READY to reach the broker
		if _, err := c.Call(ctx, "Files.get_interfaces"); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	v, err := c.Call(ctx, "Files.read", "ab")
	fmt.Printf("%q %v\n", v, err)
	fmt.Println(c.Call(ctx, "Files.encoded", 0))
	// Output:
	// "ababab" <nil>
	// [1 2 3] <nil>
}
