// Package telemetry makes gaterpc calls observable: OpenTelemetry tracing,
// Prometheus metrics and structured logging: gate.Middleware for the
// client and the worker, broker.Observers for the broker (BrokerObserver
// for spans and logs, BrokerMetrics for latency histograms, both on the
// broker's loop), a Prometheus collector over the broker's Stats snapshot
// and a non-blocking slog handler.
//
// The core packages gate and broker only carry trace context in
// Request.Metadata and call middleware or observers; they import neither the
// OpenTelemetry API nor client_golang (deps_test.go enforces it). Binaries
// build providers with the telemetry/setup package.
//
// A worker, traced and measured:
//
//	reg := prometheus.NewRegistry()
//	sm, err := telemetry.NewServerMetrics(reg, telemetry.WithMethods("Echo/echo"))
//	if err != nil { ... }
//	w, err := svc.NewWorker(endpoint, gate.WithMiddleware(
//		telemetry.Tracing(telemetry.WithMethods("Echo/echo")), // first = outermost
//		sm.Middleware(),
//		telemetry.Logging(logger),
//	))
//
// A broker takes observers and the Stats collector:
//
//	bm, _ := telemetry.NewBrokerMetrics(reg)
//	b, _ := broker.New(broker.WithObserver(bm, telemetry.BrokerObserver(logger)))
//	reg.MustRegister(telemetry.NewBrokerCollector(b))
//
// Logs go through a QueueHandler that never blocks the caller:
//
//	inner, _ := telemetry.NewLogHandler(os.Stderr, "auto", slog.LevelInfo)
//	qh := telemetry.NewQueueHandler(inner, telemetry.QueueOptions{})
//	defer qh.Close(ctx)
//	slog.SetDefault(slog.New(qh))
//
// Span, attribute, metric and log key names are listed in
// docs/observability.md. Metric label values come from closed sets:
// methods from the table given with WithMethods (or the first
// DefaultMaxLabelValues seen), "_OTHER" for the rest; never peer
// addresses, worker ids or request ids.
//
// Every exported function and method is safe for concurrent use. Nothing
// here touches the default Prometheus registry: constructors take a
// prometheus.Registerer (nil: do not register) and collectors are
// registered by the caller.
package telemetry
