package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/telemetry"
)

// ErrConfig is wrapped by the errors New returns for an invalid Config
// or OTEL_* setting.
var ErrConfig = errors.New("setup: invalid config")

// Config configures New. The zero value is usable: no metrics server,
// "auto" logs at Info to stderr, traces exported only when the OTEL_*
// environment asks for it, and the globals installed.
type Config struct {
	// ServiceName is the resource's service.name; OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override it. Default "gaterpc-" + Role.
	ServiceName string
	// Role is the process's role ("broker", "worker", "client", ...),
	// used in gaterpc_build_info, in logs and to pick middleware.
	Role string
	// Version is the build version in gaterpc_build_info and
	// service.version; empty means telemetry.ReadBuild's (the link-time
	// override, else the main module's version).
	Version string
	// InstanceID is service.instance.id; empty means a random UUID.
	InstanceID string

	// MetricsAddr is the listen address of the HTTP server with /metrics,
	// /healthz and /readyz (e.g. ":9100", "127.0.0.1:0"); empty means no
	// server.
	MetricsAddr string
	// Pprof also serves the net/http/pprof profiles under /debug/pprof/
	// on the metrics server. They expose the process's internals: serve
	// them only on an address that is not public.
	Pprof bool
	// Ready reports readiness for /readyz: nil error means 200, else 503
	// with the error text. A nil Ready is always ready.
	Ready func(ctx context.Context) error

	// LogFormat is "auto" (tint on a terminal, JSON otherwise), "text"
	// or "json"; empty means "auto".
	LogFormat string
	// LogLevel is the minimum level logged (zero value: Info).
	LogLevel slog.Level
	// LogWriter receives the logs; nil means os.Stderr.
	LogWriter io.Writer
	// LogQueueSize is the log queue capacity; <= 0 means
	// telemetry.DefaultQueueSize.
	LogQueueSize int

	// Sampler overrides the SDK's sampler, which otherwise follows
	// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default: parent
	// based, always on).
	Sampler sdktrace.Sampler

	// NoGlobals keeps New from installing the tracer provider, the
	// propagator and the logger as otel and slog globals.
	NoGlobals bool
}

// Telemetry holds the providers built by New. Its fields are set by New
// and must not be changed. Shutdown releases everything.
type Telemetry struct {
	// Logger logs through the queue handler.
	Logger *slog.Logger
	// Registry holds the Go, process, build-info, log-drop and (when traces
	// are exported) span-drop collectors and everything registered through
	// Middleware and BrokerMetrics; it is served on /metrics.
	Registry *prometheus.Registry
	// TracerProvider is an SDK provider with an OTLP exporter when the
	// OTEL_* environment configures one, and a no-op provider otherwise.
	TracerProvider trace.TracerProvider
	// Propagator is W3C TraceContext + Baggage.
	Propagator propagation.TextMapPropagator

	cfg Config
	sdk *sdktrace.TracerProvider // nil when no exporter
	// parentBased: sdk's sampler never samples a child of an unsampled
	// parent (telemetry.WithParentBasedSampling).
	parentBased bool
	logQ        *telemetry.QueueHandler

	srv      *http.Server
	ln       net.Listener
	serveErr chan error

	mu      sync.Mutex
	mws     map[string]gate.Middleware
	server  *telemetry.ServerMetrics // worker RED metrics, once Middleware made them
	bm      *telemetry.BrokerMetrics
	stopped bool
}

// New builds the telemetry of a binary. On error everything already
// built is released. The caller must call Shutdown.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.Role == "" {
		cfg.Role = "gaterpc"
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "gaterpc-" + cfg.Role
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = uuid.NewString()
	}
	if cfg.LogWriter == nil {
		cfg.LogWriter = os.Stderr
	}
	t := &Telemetry{
		cfg:        cfg,
		Registry:   prometheus.NewRegistry(),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		mws:        map[string]gate.Middleware{},
	}

	inner, err := telemetry.NewLogHandler(cfg.LogWriter, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	t.logQ = telemetry.NewQueueHandler(inner, telemetry.QueueOptions{Size: cfg.LogQueueSize})
	t.Logger = slog.New(t.logQ).With(telemetry.KeyRole, cfg.Role)

	if err := t.initMetrics(); err != nil {
		t.release(ctx)
		return nil, err
	}
	if err := t.initTracing(ctx); err != nil {
		t.release(ctx)
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if err := t.serve(); err != nil {
			t.release(ctx)
			return nil, err
		}
	}
	if !cfg.NoGlobals {
		otel.SetTracerProvider(t.TracerProvider)
		otel.SetTextMapPropagator(t.Propagator)
		slog.SetDefault(t.Logger)
	}
	return t, nil
}

func (t *Telemetry) initMetrics() error {
	return errors.Join(
		t.Registry.Register(collectors.NewGoCollector()),
		t.Registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		t.Registry.Register(telemetry.BuildInfo(t.cfg.Role, t.cfg.Version)),
		t.Registry.Register(t.logQ.Collector()),
	)
}

// exporterKind reads the two settings the SDK has no single switch for:
// whether to export at all and over which OTLP protocol.
func exporterKind() (string, error) {
	exp := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") + os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	switch exp {
	case "":
		if endpoint == "" {
			return "", nil
		}
	case "none":
		return "", nil
	case "otlp":
	default:
		return "", fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q (supported: otlp, none)", ErrConfig, exp)
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "", "http/protobuf":
		return "http/protobuf", nil
	case "grpc":
		return "grpc", nil
	}
	return "", fmt.Errorf("%w: OTLP protocol %q (supported: grpc, http/protobuf)", ErrConfig, proto)
}

func (t *Telemetry) initTracing(ctx context.Context) error {
	kind, err := exporterKind()
	if err != nil {
		return err
	}
	if kind == "" {
		t.TracerProvider = noop.NewTracerProvider()
		return nil
	}
	var exp sdktrace.SpanExporter
	switch kind {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return fmt.Errorf("setup: OTLP %s exporter: %w", kind, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(t.cfg.ServiceName),
			semconv.ServiceInstanceID(t.cfg.InstanceID),
			semconv.ServiceVersion(t.version()),
		),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil && res == nil {
		_ = exp.Shutdown(ctx)
		return fmt.Errorf("setup: resource: %w", err)
	}
	// The processor wakes its export goroutine once per batch or per
	// schedule delay, where the SDK's batcher hands every span over a
	// channel (a goroutine wake-up per span).
	bsp := NewBatchSpanProcessor(exp, envBatchOptions())
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gaterpc_trace_spans_dropped_total",
		Help: "Sampled spans dropped because the span export queue was full.",
	}, func() float64 { return float64(bsp.Dropped()) })
	if err := t.Registry.Register(dropped); err != nil {
		_ = bsp.Shutdown(ctx)
		return fmt.Errorf("setup: span processor metrics: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(bsp),
		sdktrace.WithResource(res),
	}
	if t.cfg.Sampler != nil {
		opts = append(opts, sdktrace.WithSampler(t.cfg.Sampler))
	}
	t.parentBased = t.cfg.Sampler == nil && parentBasedEnv()
	t.sdk = sdktrace.NewTracerProvider(opts...)
	t.TracerProvider = t.sdk
	return nil
}

// parentBasedEnv reports whether the SDK's sampler from OTEL_TRACES_SAMPLER
// never samples a span whose parent is not sampled: the default
// (parentbased_always_on), every parentbased_* sampler and always_off.
// An unknown value makes the SDK fall back to its default, but is not
// trusted here.
func parentBasedEnv() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER"))) {
	case "", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio", "always_off":
		return true
	}
	return false
}

// traceOptions are the telemetry options of every hop's tracing, before
// the caller's.
func (t *Telemetry) traceOptions(opts []telemetry.Option) []telemetry.Option {
	topts := []telemetry.Option{telemetry.WithTracerProvider(t.TracerProvider), telemetry.WithPropagators(t.Propagator)}
	if t.parentBased {
		topts = append(topts, telemetry.WithParentBasedSampling())
	}
	return append(topts, opts...)
}

func (t *Telemetry) version() string {
	if t.cfg.Version != "" {
		return t.cfg.Version
	}
	return telemetry.ReadBuild().Version
}

func (t *Telemetry) serve() error {
	ln, err := net.Listen("tcp", t.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("setup: metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true, // exemplars are only exposed in OpenMetrics
		Registry:          t.Registry,
		ErrorLog:          slog.NewLogLogger(t.logQ, slog.LevelWarn),
		Timeout:           10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready := t.cfg.Ready; ready != nil {
			if err := ready(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	if t.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	t.ln = ln
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(t.logQ, slog.LevelWarn)}
	t.serveErr = make(chan error, 1)
	go func() { t.serveErr <- t.srv.Serve(ln) }()
	return nil
}

// MetricsAddr returns the address the metrics server listens on (useful
// with port 0), or "" when there is none.
func (t *Telemetry) MetricsAddr() string {
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// Middleware returns the middleware for a hop of Config.Role ("client"
// or "worker"): Tracing, then the role's RED metrics (registered on
// Registry the first time), then Logging — the first is outermost. A
// broker runs no middleware: it takes BrokerMetrics and BrokerObserver,
// observers on its loop. The options (e.g. telemetry.WithMethods) apply
// on the first call only.
func (t *Telemetry) Middleware(opts ...telemetry.Option) (gate.Middleware, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	role := t.cfg.Role
	if mw, ok := t.mws[role]; ok {
		return mw, nil
	}
	mws := []gate.Middleware{telemetry.Tracing(t.traceOptions(opts)...)}
	switch role {
	case gate.RoleClient.String():
		m, err := telemetry.NewClientMetrics(t.Registry, opts...)
		if err != nil {
			return nil, err
		}
		mws = append(mws, m.Middleware())
	case gate.RoleWorker.String():
		m, err := telemetry.NewServerMetrics(t.Registry, opts...)
		if err != nil {
			return nil, err
		}
		t.server = m
		mws = append(mws, m.Middleware())
	}
	mws = append(mws, telemetry.Logging(t.rpcLogger(), opts...))
	mw := gate.Chain(mws...)
	t.mws[role] = mw
	return mw, nil
}

// ExecutorDepth returns the function a worker reports its executor queue
// depths to (pass it to gate.WithExecutorDepthHook): it sets
// gaterpc_worker_executor_queue_depth. It is nil until Middleware has been
// called with Config.Role "worker".
func (t *Telemetry) ExecutorDepth() func(service, executor string, depth int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.server == nil {
		return nil
	}
	return t.server.SetExecutorQueueDepth
}

// BrokerObserver returns the broker.Observer that traces the broker hop
// and logs each request at Debug (see telemetry.BrokerObserver), with
// Logger, TracerProvider and Propagator. Install it with
// broker.WithObserver: it runs on the broker's loop, without a goroutine
// per request. It returns nil when there is nothing to observe (tracing
// off and Logger not enabled at Debug).
func (t *Telemetry) BrokerObserver(opts ...telemetry.Option) broker.Observer {
	_, noTracing := t.TracerProvider.(noop.TracerProvider)
	if noTracing && !t.Logger.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return telemetry.BrokerObserver(t.rpcLogger(), t.traceOptions(opts)...)
}

// BrokerMetrics returns the broker latency histograms (registered on
// Registry the first time): a broker.Observer of the broker's events, to
// install with broker.WithObserver beside BrokerObserver.
func (t *Telemetry) BrokerMetrics(opts ...telemetry.Option) (*telemetry.BrokerMetrics, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bm == nil {
		bm, err := telemetry.NewBrokerMetrics(t.Registry, opts...)
		if err != nil {
			return nil, err
		}
		t.bm = bm
	}
	return t.bm, nil
}

// RegisterBroker registers collectors of src's Stats (normally the
// *broker.Broker) on Registry: the broker state and its authentication
// failures.
func (t *Telemetry) RegisterBroker(src interface{ Stats() broker.Stats }, opts ...telemetry.Option) error {
	if err := t.Registry.Register(telemetry.NewBrokerCollector(src, opts...)); err != nil {
		return err
	}
	return t.Registry.Register(telemetry.NewBrokerAuthCollector(src))
}

// Shutdown stops the metrics server, flushes and stops the tracer
// provider (exporting buffered spans) and flushes the log queue, each
// within ctx. Afterwards Logger (and the slog default, if installed)
// still works but writes synchronously. It is idempotent; the error joins
// every failure.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	t.mu.Unlock()
	return t.release(ctx)
}

func (t *Telemetry) release(ctx context.Context) error {
	var errs []error
	if t.srv != nil {
		if err := t.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("setup: metrics server: %w", err))
			_ = t.srv.Close()
		}
		if err := <-t.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("setup: metrics server: %w", err))
		}
	}
	if t.sdk != nil {
		if err := t.sdk.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("setup: tracer provider: %w", err))
		}
	}
	if t.logQ != nil {
		if err := t.logQ.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("setup: log queue: %w (%s records dropped)", err, strconv.FormatUint(t.logQ.Dropped(), 10)))
		}
	}
	return errors.Join(errs...)
}

// rpcLogger is the logger of per-call records: the process logger without
// its gaterpc.role attribute, which every per-call record carries itself.
func (t *Telemetry) rpcLogger() *slog.Logger { return slog.New(t.logQ) }
