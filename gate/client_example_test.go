package gate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// exampleStack runs a broker and a worker of service "Demo" on inproc
// endpoints of zctx and returns a function that stops them.
func exampleStack(zctx *zmq.Context, name string) (frontend string, stop func()) {
	quiet := slog.New(slog.DiscardHandler)
	frontend, backend := "inproc://"+name+"-front", "inproc://"+name+"-back"
	b, err := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend(frontend), broker.WithBackend(backend), broker.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background()) }()

	svc, _ := gate.NewService("Demo", "example service")
	_ = gate.Func2(svc, "add", func(_ context.Context, a, b int) (int, error) { return a + b, nil })
	_ = gate.Func1(svc, "count", func(_ context.Context, n int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := range n {
				if !yield(i) {
					return
				}
			}
		}, nil
	})
	_ = gate.Func1(svc, "countThenFail", func(_ context.Context, n int) (iter.Seq2[int, error], error) {
		return func(yield func(int, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
			yield(0, errors.New("source went away"))
		}, nil
	})
	_ = gate.Func1(svc, "blob", func(_ context.Context, n int) (gate.HugeValue, error) {
		return gate.Huge(bytes.Repeat([]byte("x"), n)), nil
	})
	w, err := svc.NewWorker(backend, gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	worked := make(chan error, 1)
	go func() { worked <- w.Serve(context.Background()) }()
	return frontend, func() {
		w.Close()
		<-worked
		b.Close()
		<-served
	}
}

// exampleClient starts the example stack under name and a client of it,
// as ExampleNewClient does, and waits for the Demo service; done stops
// them.
func exampleClient(name string) (ctx context.Context, c *gate.Client, done func()) {
	zctx, _ := zmq.NewContext()
	frontend, stop := exampleStack(zctx, name)
	c, err := gate.NewClient(frontend, gate.WithZMQContext(zctx))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	waitReady(ctx, c)
	return ctx, c, func() {
		cancel()
		c.Close()
		stop()
		_ = zctx.Term()
	}
}

// waitReady waits until the Demo service has a worker.
func waitReady(ctx context.Context, c *gate.Client) {
	if err := c.WaitService(ctx, "Demo"); err != nil {
		panic(err)
	}
}

func ExampleNewClient() {
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	frontend, stop := exampleStack(zctx, "example-client")
	defer stop()

	c, err := gate.NewClient(frontend, gate.WithZMQContext(zctx))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitReady(ctx, c)

	sum, err := c.Call(ctx, "Demo.add", 2, 3)
	fmt.Println(sum, err)
	typed, err := gate.CallAs[int](ctx, c, "Demo.add", 40, 2)
	fmt.Println(typed, err)
	_, err = c.Call(ctx, "Demo.missing")
	fmt.Println(gate.CodeOf(err))
	// Output:
	// 5 <nil>
	// 42 <nil>
	// UNIMPLEMENTED
}

func ExampleClient_Stream() {
	ctx, c, done := exampleClient("example-stream") // the Demo stack of ExampleNewClient
	defer done()

	s, err := gate.StreamAs[int](ctx, c, "Demo.count", 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	for v, err := range s.All() { // closes the stream when the loop ends
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println("item", v)
	}
	// Output:
	// item 0
	// item 1
	// item 2
}

// Items yields only items; Err says afterwards why the stream ended, so a
// stream that fails after some items yields no placeholder value. Single
// tells a method that answered one value from one that streamed.
func ExampleTypedStream_Items() {
	ctx, c, done := exampleClient("example-items") // the Demo stack of ExampleNewClient
	defer done()

	s, err := gate.StreamAs[int](ctx, c, "Demo.countThenFail", 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	for v := range s.Items() {
		fmt.Println("item", v)
	}
	fmt.Println("streamed:", !s.Single(), "err:", gate.CodeOf(s.Err()))

	one, err := gate.StreamAs[int](ctx, c, "Demo.add", 2, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	for v := range one.Items() {
		fmt.Println("value", v, "single:", one.Single(), "err:", one.Err())
	}
	// Output:
	// item 0
	// item 1
	// streamed: true err: UNKNOWN
	// value 5 single: true err: <nil>
}

func ExampleClient_CallReader() {
	ctx, c, done := exampleClient("example-reader") // the Demo stack of ExampleNewClient
	defer done()

	// A HugeData reply, read as it arrives rather than held whole.
	r, err := c.CallReader(ctx, "Demo.blob", 3<<20)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	body, size, err := gate.ReadBinary(r) // the value is one bytes
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := io.Copy(io.Discard, body)
	fmt.Println(size, n, err)
	// Output: 3145728 3145728 <nil>
}

// A client built with WithRetry sends a call marked Idempotent again when
// the broker or the worker was lost before the reply, or no worker served
// the service yet, within the call's deadline and the retry budget.
