// Package broker is the gate-rpc broker: a ZeroMQ Majordomo broker that is
// wire-compatible with gaterpc 0.2.12 clients and workers
// (docs/wire-protocol.md sections 2–10).
//
// A Broker binds a ROUTER frontend for clients and a ROUTER backend for
// workers and routes each client request to a worker of the requested
// service, round-robin across workers with free capacity (announced in
// READY). When no worker has room the request waits in a bounded
// per-service FIFO; it is answered with BusyWorkerError when the wait
// exceeds the queue timeout or the queue is full, and with
// ServiceUnAvailableError at once when the service has no live worker.
// The broker heartbeats idle workers, expires silent ones, and fails every
// request in flight on a worker that dies or leaves (WorkerLostError)
// instead of letting the caller time out. Input is bounded as it arrives
// (frames, bytes, READY text, capacity, services; see WithMaxFrames and
// docs/reliability.md), a worker the broker does not know is told
// DISCONNECT so that it registers again at once, a worker that stopped
// answering heartbeats gets no new work, and a worker never holds more
// requests than its announced capacity. It also serves the internal
// service "Gate" (get_services, query_service, info, keepalive, and the
// gate extensions cancel and credit).
//
// Between gate peers the broker relays flow control (docs/flow-control.md):
// a request that announces a window and goes to a worker that announced
// "gaterpc/3" is marked for relay, the reader's Gate.credit reaches the
// worker as CREDIT, and a worker that sends beyond the window has its call
// failed. Towards a worker that announced "gaterpc/4" the mark also lets
// it batch stream items for a client that accepts batches; the broker
// counts each item of a batch against the window. Replies held for a
// client whose pipe is full are bounded by
// WithPeerBuffer (flow-controlled ones by the window and the byte limit).
//
// One goroutine, the one running Serve, owns all sockets. It reads in
// batches and never decodes request or reply bodies to route them; it
// receives into reused buffers and reuses its request records, so a
// relayed call allocates nothing in steady state. Other goroutines reach
// it through a queue woken by an eventfd polled next to the sockets, so
// every exported method is safe for concurrent use.
//
// Usage:
//
//	b, err := broker.New(
//		broker.WithFrontend("tcp://127.0.0.1:5555"),
//		broker.WithBackend("tcp://127.0.0.1:5556"),
//		broker.WithLogger(logger),
//	)
//	if err != nil {
//		return err
//	}
//	go func() { errc <- b.Serve(context.Background()) }()
//	front, back, err := b.Addrs(ctx) // actual endpoints once bound
//	...
//	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//	defer cancel()
//	_ = b.Shutdown(sctx) // drain in-flight requests, then close
//	<-errc               // gate.ErrClosed
//
// Observability: Stats returns a snapshot for scrape-time collectors. The
// broker's one extension seam is the Observer (WithObserver), called
// synchronously on the loop goroutine with no goroutine or hand-off per
// request: Observe follows each worker-service request from arrival to
// finish (identity, metadata, dispatch — where it may rewrite the
// metadata sent to the worker —, replies, outcome), and an observer that
// implements EventObserver also gets the broker-level events (request
// arrived, internal Gate calls included; queued; dispatched; reply;
// finished; worker ready and gone; heartbeats; drops). telemetry builds
// its broker spans, logs and latency histograms on it. An admission
// filter (WithAdmission) may refuse a request on the loop as it arrives.
//
// Options: New applies every option, then reports all invalid arguments
// at once (errors.Join), each wrapping gate.ErrInvalidOption, the same
// rule as the gate package's options; a zero or empty argument keeps the
// default.
//
// Security: by default both sockets are plain. WithCurve turns on CURVE
// encryption and authentication with allow-lists of client and worker
// keys (WithClientKeys, WithWorkerKeys; a worker key may be limited to
// services); denied peers get nothing and are counted in
// Stats.AuthFailures. See docs/security.md.
package broker
