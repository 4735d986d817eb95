package telemetry

import (
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultBuckets are the OTel semantic-convention buckets for RPC
// durations, in seconds.
var DefaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// DefaultSizeBuckets are the buckets of the request and response size
// histograms, in bytes (powers of 4 from 64 B to 64 MiB).
var DefaultSizeBuckets = []float64{64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}

// Option configures Tracing, Logging and the metric constructors. Options
// that do not apply to a constructor are ignored by it. A nil, zero or
// out-of-range argument keeps the default, so no telemetry option is ever
// invalid (the gate and broker rule, "all invalid arguments reported by
// the constructor, each wrapping gate.ErrInvalidOption", has nothing to
// report here).
type Option func(*config)

type config struct {
	tp          trace.TracerProvider
	prop        propagation.TextMapPropagator
	methods     []string
	maxMethods  int
	maxServices int
	buckets     []float64
	sizeBuckets []float64
	nativeFac   float64
	exemplars   bool
	now         func() time.Time // test clock; nil: the monotonic clock (see clock)
	server      []attribute.KeyValue
	parentBased bool
}

func newConfig(opts []Option) *config {
	c := &config{exemplars: true}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.buckets == nil {
		c.buckets = DefaultBuckets
	}
	if c.sizeBuckets == nil {
		c.sizeBuckets = DefaultSizeBuckets
	}
	return c
}

// clockEpoch is the origin of config.clock.
var clockEpoch = time.Now()

// clock returns the time since clockEpoch. It reads only the monotonic
// clock, which costs about half of time.Now (wall and monotonic).
func (c *config) clock() time.Duration {
	if c.now != nil {
		return c.now().Sub(clockEpoch)
	}
	return time.Since(clockEpoch)
}

func (c *config) tracerProvider() trace.TracerProvider {
	if c.tp != nil {
		return c.tp
	}
	return otel.GetTracerProvider()
}

func (c *config) propagator() propagation.TextMapPropagator {
	if c.prop != nil {
		return c.prop
	}
	return otel.GetTextMapPropagator()
}

// WithTracerProvider sets the provider of the tracer; the default is
// otel.GetTracerProvider() at the time the middleware is built.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithPropagators sets the propagator that injects and extracts trace
// context in Request.Metadata; the default is otel.GetTextMapPropagator()
// at the time the middleware is built.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.prop = p
		}
	}
}

// WithParentBasedSampling declares two facts the kit cannot see for
// itself, so that it can skip the OpenTelemetry SDK for spans that would
// not be recorded: the tracer provider's sampler never samples a span
// whose parent is not sampled (the SDK's default, every
// OTEL_TRACES_SAMPLER=parentbased_* setting, and always_off), and the
// propagator reads W3C traceparent (propagation.TraceContext, alone or in
// a composite). telemetry/setup passes it when both hold.
//
// With it, a hop whose incoming (or, at the client, in-process) parent is
// valid and not sampled starts no SDK span: the broker's observer leaves
// the request to the broker's plain path after reading the sampled flag
// from traceparent (no allocation), and the client and the worker put a
// non-recording span with the parent's trace id, a new span id and the
// sampled flag off in ctx (for logs, nested calls and the next hop). A
// sampler that can sample such a child would have its decision ignored:
// do not give this option with one.
func WithParentBasedSampling() Option {
	return func(c *config) { c.parentBased = true }
}

// WithMethods sets the registered method table: the "Service/method"
// names that may appear in rpc.method and the rpc_method label. Any other
// method becomes "_OTHER". Without it the first DefaultMaxLabelValues
// distinct methods seen are admitted (see WithMaxMethods).
func WithMethods(fullMethods ...string) Option {
	return func(c *config) {
		if fullMethods != nil {
			c.methods = append(c.methods[:0:0], fullMethods...)
		}
	}
}

// WithServerAddress records the broker endpoint the client connects to on
// client spans, as the semantic conventions require: server.address and
// server.port for tcp://host:port, server.address (the path) and
// network.transport "unix" for ipc://path. Other endpoints (inproc) add
// nothing.
func WithServerAddress(endpoint string) Option {
	return func(c *config) { c.server = serverAttrs(endpoint) }
}

func serverAttrs(endpoint string) []attribute.KeyValue {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok {
		return nil
	}
	switch scheme {
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return nil
		}
		attrs := []attribute.KeyValue{semconv.ServerAddress(host)}
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
		return attrs
	case "ipc":
		return []attribute.KeyValue{semconv.ServerAddress(rest), semconv.NetworkTransportUnix}
	}
	return nil
}

// WithMaxMethods bounds the methods admitted when no table is set with
// WithMethods. n <= 0 keeps DefaultMaxLabelValues.
func WithMaxMethods(n int) Option {
	return func(c *config) { c.maxMethods = n }
}

// WithMaxServices bounds the service label values of broker and worker
// metrics: the first n services keep their name, later ones are "_OTHER".
// n <= 0 keeps DefaultMaxLabelValues.
func WithMaxServices(n int) Option {
	return func(c *config) { c.maxServices = n }
}

// WithBuckets sets the buckets of the duration histograms (seconds).
func WithBuckets(b ...float64) Option {
	return func(c *config) {
		if len(b) > 0 {
			c.buckets = append([]float64(nil), b...)
		}
	}
}

// WithSizeBuckets sets the buckets of the size histograms (bytes).
func WithSizeBuckets(b ...float64) Option {
	return func(c *config) {
		if len(b) > 0 {
			c.sizeBuckets = append([]float64(nil), b...)
		}
	}
}

// WithNativeHistograms makes every histogram also a Prometheus native
// histogram with the given bucket factor (e.g. 1.1); the classic buckets
// stay. factor <= 1 disables native histograms (the default).
func WithNativeHistograms(factor float64) Option {
	return func(c *config) { c.nativeFac = factor }
}

// WithExemplars turns trace-id exemplars on the duration histograms on or
// off (default on). Exemplars are attached only when ctx holds a sampled
// span, and at most once per ExemplarInterval per bucket of a series.
func WithExemplars(on bool) Option {
	return func(c *config) { c.exemplars = on }
}
