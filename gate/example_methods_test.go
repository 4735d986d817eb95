package gate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// exampleServe runs a broker and a worker of svc on inproc endpoints of
// zctx, and returns a client of the broker that has waited for svc, and a
// function that stops everything.
func exampleServe(ctx context.Context, zctx *zmq.Context, svc *gate.Service, wopts ...gate.WorkerOption) (*gate.Client, func()) {
	quiet := slog.New(slog.DiscardHandler)
	front, back := "inproc://"+svc.Name()+"-front", "inproc://"+svc.Name()+"-back"
	b, err := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend(front), broker.WithBackend(back), broker.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background()) }()
	w, err := svc.NewWorker(back, append([]gate.WorkerOption{gate.WithZMQContext(zctx), gate.WithLogger(quiet)}, wopts...)...)
	if err != nil {
		panic(err)
	}
	worked := make(chan error, 1)
	go func() { worked <- w.Serve(context.Background()) }()
	c, err := gate.NewClient(front, gate.WithZMQContext(zctx), gate.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	if err := c.WaitService(ctx, svc.Name()); err != nil {
		panic(err)
	}
	return c, func() {
		c.Close()
		w.Close()
		<-worked
		b.Close()
		<-served
	}
}

// A Python method `def log(self, level, *args, **kwargs)` in Go: a
// variadic parameter takes the remaining positional arguments and a
// gate.Kwargs parameter the keyword arguments. get_interfaces shows it in
// Python's form.
func ExampleService_Register_argsKwargs() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zctx, _ := zmq.NewContext()
	defer zctx.Term()

	svc, _ := gate.NewService("Log", "")
	err := svc.Register("log", func(_ context.Context, level string, kwargs gate.Kwargs, args ...any) (string, error) {
		return fmt.Sprintf("%s args=%v kwargs=%v", level, args, map[string]any(kwargs)), nil
	}, gate.WithParams("level", "args"), gate.WithDoc("Log a message."))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, stop := exampleServe(ctx, zctx, svc)
	defer stop()

	// log("info", "disk", 93, unit="%", host="a1")
	fmt.Println(c.Call(ctx, "Log.log", "info", "disk", 93, gate.Kwargs{"unit": "%", "host": "a1"}))
	ifs, _ := c.Interfaces(ctx, "Log")
	fmt.Println(ifs["log"].Signature, "-", ifs["log"].Doc)
	// Output:
	// info args=[disk 93] kwargs=map[host:a1 unit:%] <nil>
	// (level: str, *args, **kwargs) -> str - Log a message.
}

// A remote error matches gate's sentinels with errors.Is: here the
// broker's ServiceUnAvailableError reply for a service no worker serves.
func ExampleClient_Call_remoteError() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	svc, _ := gate.NewService("Up", "")
	_ = gate.Func0(svc, "ping", func(context.Context) (string, error) { return "pong", nil })
	c, stop := exampleServe(ctx, zctx, svc)
	defer stop()

	_, err := c.Call(ctx, "Down.ping")
	fmt.Println(errors.Is(err, gate.ErrNoService), gate.CodeOf(err))
	var ge *gate.Error
	if errors.As(err, &ge) {
		fmt.Println(ge.Class)
	}
	_, err = c.Call(ctx, "Up.nope")
	fmt.Println(errors.Is(err, gate.ErrNoService), gate.CodeOf(err))
	// Output:
	// true UNAVAILABLE
	// ServiceUnAvailableError
	// false UNIMPLEMENTED
}

// Point travels as a two-element array, like a Python tuple, once a hook
// is registered for it.
type Point struct{ X, Y int }

// RegisterEncoder teaches every client and worker of the process to
// encode a type, as Python msgpack's default= hook does.
func ExampleRegisterEncoder() {
	gate.RegisterEncoder(func(p Point) (any, error) { return []int{p.X, p.Y}, nil })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	svc, _ := gate.NewService("Geo", "")
	_ = gate.Func1(svc, "origin_of", func(_ context.Context, name string) (Point, error) { return Point{3, 4}, nil })
	c, stop := exampleServe(ctx, zctx, svc)
	defer stop()

	v, err := c.Call(ctx, "Geo.origin_of", "a")
	fmt.Println(v, err)
	// The caller's side encodes with the hook too: a Point argument is
	// sent as [x, y].
	_ = gate.Func1(svc, "echo", func(_ context.Context, v any) (any, error) { return v, nil })
	v, err = c.Call(ctx, "Geo.echo", Point{5, 6})
	fmt.Println(v, err)
	// Output:
	// [3 4] <nil>
	// [5 6] <nil>
}

// Worker middleware sees every request before the method runs and may
// answer it itself with SendResult (or SendError) instead of calling the
// next handler: here a cache in front of a slow method.
func ExampleSendResult() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zctx, _ := zmq.NewContext()
	defer zctx.Term()

	cached := map[string]string{"answer": "42 (cached)"}
	cache := func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			if v, ok := cached[req.Method]; ok && req.Info().Role == gate.RoleWorker {
				return gate.SendResult(ctx, w, v)
			}
			return next.ServeRPC(ctx, req, w)
		})
	}
	svc, _ := gate.NewService("Oracle", "")
	_ = gate.Func0(svc, "answer", func(context.Context) (string, error) { return "42 (computed)", nil })
	_ = gate.Func0(svc, "question", func(context.Context) (string, error) { return "unknown", nil })
	c, stop := exampleServe(ctx, zctx, svc, gate.WithMiddleware(cache))
	defer stop()

	fmt.Println(c.Call(ctx, "Oracle.answer"))
	fmt.Println(c.Call(ctx, "Oracle.question"))
	// Output:
	// 42 (cached) <nil>
	// unknown <nil>
}
