// Package gate is the core of gate-rpc for Go: workers that expose Go
// functions as RPC methods, clients that call them, and the Handler,
// Middleware and error types shared by the client, the broker and the
// worker. It speaks the wire protocol of gaterpc 0.2.12 (ZeroMQ
// Majordomo with msgpack bodies), so Go and Python clients, brokers and
// workers mix freely.
//
// A worker serves a [Service] to a broker's backend:
//
//	svc, err := gate.NewService("Calc", "a calculator")
//	if err != nil { ... }
//	gate.Func2(svc, "add", func(ctx context.Context, a, b int) (int, error) {
//		return a + b, nil
//	})
//	svc.Register("count", func(ctx context.Context, n int) iter.Seq[int] { ... }) // a stream
//	svc.Register("dump", func(ctx context.Context) (gate.HugeValue, error) { ... }) // HugeData
//
//	w, err := svc.NewWorker("tcp://127.0.0.1:5556", gate.WithCapacity(100))
//	if err != nil { ... }
//	go w.Serve(ctx)
//	err = w.WaitRegistered(ctx) // the broker has answered READY
//	...
//	w.Shutdown(ctx) // finish in-flight calls, send DISCONNECT
//
// and a client calls it through the broker's frontend:
//
//	c, err := gate.NewClient("tcp://127.0.0.1:5555")
//	err = c.WaitService(ctx, "Calc") // a worker of Calc is registered
//	sum, err := gate.CallAs[int](ctx, c, "Calc.add", 1, 2)
//	calc := c.Service("Calc")            // a service handle
//	sum, err = gate.CallAs[int](ctx, calc, "add", 1, 2)
//
// # Calls and errors
//
// [Client.Call] returns generic values (int64, float64, string, []byte,
// []any, map[string]any, ...); every map is a map[string]any, keys that
// are not strings converted as Python's str() converts them (1 → "1").
// [CallAs] and [StreamAs] decode into Go types, typed map keys included,
// and take a [*Client] or a [ServiceClient] (both are a [Caller]).
// A final [Kwargs] argument is sent as keyword arguments. A remote
// exception is an [*Error] with the code derived from its class; it
// matches gate's sentinels with errors.Is (a broker's
// ServiceUnAvailableError is [ErrNoService], a TimeoutError
// [ErrTimeout]), and [CodeOf] classifies any error.
//
// # Waiting for peers
//
// A worker is registered once the broker has spoken to it after its READY
// (brokers answer READY with a heartbeat at once): [Worker.WaitRegistered]
// waits for that, and [Worker.Connected], for readiness probes, turns
// false again when the broker goes silent or disconnects it.
// [Client.WaitService] waits until the broker has a worker for a service.
//
// # Methods
//
// There is one way to add a method: [Service.Register](name, fn, opts...).
// It maps wire arguments onto fn's Go parameters: positional arguments
// fill parameters in order (decoded straight into their types), a
// variadic parameter takes the rest (Python's *args), a [Kwargs]
// parameter receives the keyword arguments (**kwargs) and a trailing
// struct receives them by field name. Wrong arity or types are answered
// with a TypeError exception that names the argument. On top of it:
//
//   - [Func0]…[Func3] are Register with fn's types checked at compile
//     time;
//   - [Service.RegisterStruct] calls Register for each method of a value
//     under its snake_case name (GetUser → get_user), the Go form of a
//     Python class with @interface methods.
//
// [MethodOption] values set a method's doc string, parameter names
// ([WithParams]) and executor. get_interfaces reports each method in
// Python's form, as 0.2.12 workers do: "(a: int, b: int) -> int",
// "(*args, **kwargs)". Code that must see the raw
// request (its metadata, peer or body frames) is worker [Middleware]; it
// may answer a call itself with [SendResult] or [SendError].
//
// A method may return a value (one reply), an iter.Seq[T] or
// iter.Seq2[T, error] (a stream: one reply per item, then an end or
// exception marker), a [Huge] value (compressed and chunked HugeData;
// values larger than Settings.AutoHugeThreshold are chunked
// automatically), a [HugeFrom] or [HugeBinary] value (HugeData read from
// an io.Reader while it is sent, so the worker never holds it), or an
// error. Between gate peers the worker chunks HugeData at the size the
// client asks for and, through a gate broker, holds stream items and
// HugeData chunks to the client's flow-control window
// (docs/flow-control.md): a slow reader slows the method down. Errors become the exception triple
// [class, repr, traceback]: an [*Error] keeps its class (see
// [NewException]), ctx errors become TimeoutError/CancelledError, and
// other errors take the name of their Go type; the traceback names the Go
// function and, for panics (which are recovered), the stack. Every
// service answers get_interfaces as 0.2.12 workers do; unknown methods
// get AttributeError('Function not found: name'), unless [WithSecure]
// (0.2.12's default SECURE=True) makes the worker stay silent.
//
// Values are encoded as Python's msgpack encodes the equivalent Python
// values (structs as maps of their fields); [RegisterEncoder] adds a
// conversion for other types, like msgpack's default= hook.
//
// # Executors, capacity, deadlines
//
// A method runs on the worker's bounded goroutine pool by default, on the
// request goroutine with [Inline], on a [Pool] of its own, or in child
// processes with a [ProcessPool] (for [ProcessFunc] functions; the binary
// must call [RunChildIfRequested] first thing in main). A worker accepts
// at most its announced capacity (Settings.MessageMax) of calls at once
// and answers the excess with RuntimeError('Request count exceeds the
// maximum value(n)'). A handler's ctx ends when the caller's deadline
// (carried in the request id as a remaining budget) passes, when the
// broker forwards a cancel, or when the worker closes.
//
// # Middleware
//
// The same [Middleware] values work at the client, the broker and the
// worker; [Chain] puts the first one outermost, and req.Info().Role tells
// the hop. At the worker every reply message — single, stream item,
// HugeData chunk, end and exception markers — passes through the
// middleware's [ReplyWriter]; the loop itself answers only requests it
// rejects before any handler runs (over capacity, shutting down).
//
// # Settings and options
//
// [Settings] holds every protocol default (heartbeat 5 s, liveness 3,
// reply timeout 60 s, capacity 5000, HugeData gzip level 1 in 1000-byte
// chunks, ...). Components copy them at construction: pass
// [WithSettings] (for example from [SettingsFromEnv], which reads GATE_*
// variables) and individual options on top. [CommonOption] values work
// for clients and workers alike. A zero Settings field, and a zero or
// empty option argument, keep the default.
//
// Every option follows one rule, as do the options of package broker: a
// constructor ([NewClient], [NewWorker], [Service.NewWorker]) applies all
// of its options, then reports every invalid argument at once, joined with
// errors.Join, each error wrapping [ErrInvalidOption]; an option never
// panics and never fails alone, and a nil option is skipped. docs/api.md
// compares the option types of gate, broker and telemetry.
//
// # Streams, huge replies and flow control
//
// A client reads a stream item by item with [Client.Stream] and a huge
// value as a byte stream with [Client.CallReader] (and [ReadBinary] for a
// bytes value). Between gate peers the reader grants its producer a
// credit window (Settings.StreamReplyMaxSize items, Settings.FlowWindowBytes
// bytes; docs/flow-control.md), so a slow reader slows the producer down
// instead of failing or buffering without bound.
//
// # Concurrency
//
// Each Client and Worker owns one ZeroMQ socket driven by one goroutine;
// all exported methods are safe for concurrent use unless documented
// otherwise. A worker serves each request on a request goroutine (which
// runs the middleware chain and, with [Inline], the method); request
// goroutines are kept for the next request for a few seconds, never more
// of them than calls in flight. Serve, Shutdown and Close follow
// net/http. Components create their own zmq.Context unless given
// [WithZMQContext], which inproc:// endpoints require.
//
// # Security
//
// Connections are plain unless [WithCurve] (or [CurveFromEnv], which
// [SettingsFromEnv] applies) gives the broker's public key and this
// peer's key pair: the connection is then encrypted and authenticated
// with CURVE, and the broker admits it only if the public key is in its
// allow-list. [NewKeyPair], [WriteKeyPair] and [ReadKeyFile] handle key
// files. See docs/security.md.
package gate
