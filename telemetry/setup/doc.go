// Package setup builds the telemetry of a gaterpc binary in one call:
// an OpenTelemetry TracerProvider exporting over OTLP when the standard
// OTEL_* environment asks for it, a Prometheus registry with the Go,
// process and build-info collectors, an HTTP server with /metrics
// (OpenMetrics with exemplars), /healthz and /readyz, and the
// queue-buffered slog logger.
//
//	tel, err := setup.New(ctx, setup.Config{
//		Role:        "worker",
//		MetricsAddr: *metricsAddr, // "" = no HTTP server
//		LogFormat:   *logFormat,   // auto|text|json
//		Ready:       func(context.Context) error { return nil },
//	})
//	if err != nil { return err }
//	defer func() {
//		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//		defer cancel()
//		_ = tel.Shutdown(sctx) // flushes spans and logs
//	}()
//	mw, err := tel.Middleware(telemetry.WithMethods(names...))
//	w, err := svc.NewWorker(endpoint, gate.WithMiddleware(mw), gate.WithLogger(tel.Logger))
//
// A broker takes BrokerMetrics (latency histograms) and BrokerObserver
// (spans and per-request logs), both observers on the broker's loop
// (broker.WithObserver), and RegisterBroker (Stats collector) instead of
// Middleware.
//
// Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER=otlp is set;
// otherwise the provider is a no-op (trace context from callers still
// propagates). The protocol follows OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL
// (grpc or http/protobuf, the default); everything else — endpoint,
// headers, TLS, timeouts, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES — is read by the SDK itself. Spans are
// exported by a BatchSpanProcessor, which reads the OTEL_BSP_* settings
// as the SDK's batcher does (BatchOptionsFromEnv).
//
// This package imports the OpenTelemetry SDK and exporters; libraries
// must not import it.
package setup
