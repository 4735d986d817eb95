package broker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gaterpc/gate/broker"
)

func ExampleNew() {
	b, err := broker.New(
		broker.WithFrontend("tcp://127.0.0.1:0"), // ports chosen by the system
		broker.WithBackend("tcp://127.0.0.1:0"),
		broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(context.Background()) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := b.Addrs(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("services:", len(b.Stats().Services))

	_ = b.Shutdown(ctx) // nothing in flight: returns at once
	fmt.Println(<-errc)
	// Output:
	// services: 0
	// gate: closed
}
