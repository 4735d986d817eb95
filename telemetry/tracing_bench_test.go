package telemetry

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

// discardExporter drops every batch, like an OTLP sink that only counts.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// benchModes are the tracing modes of the hop benchmarks: "off" is the
// kit with a no-op tracer provider (metrics and logs only), the others an
// SDK provider with a batch span processor into discardExporter and a
// parent-based ratio sampler, as telemetry/setup builds it from
// OTEL_TRACES_SAMPLER=parentbased_traceidratio.
var benchModes = []struct {
	name  string
	ratio float64 // < 0: no-op provider
}{
	{"off", -1},
	{"ratio=0.1", 0.1},
	{"ratio=1.0", 1},
}

func benchProvider(b *testing.B, ratio float64) trace.TracerProvider {
	b.Helper()
	if ratio < 0 {
		return noop.NewTracerProvider()
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(discardExporter{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// benchChain is the middleware telemetry/setup installs for role: Tracing,
// the role's RED metrics, Logging at Info through a QueueHandler.
func benchChain(b *testing.B, role gate.Role, tp trace.TracerProvider) gate.Middleware {
	b.Helper()
	opts := []Option{WithTracerProvider(tp), WithPropagators(testProp)}
	if _, noop := tp.(noop.TracerProvider); !noop {
		opts = append(opts, benchParentBased()...)
	}
	q := NewQueueHandler(slog.NewJSONHandler(io.Discard, nil), QueueOptions{})
	b.Cleanup(func() { _ = q.Close(context.Background()) })
	logger := slog.New(q)
	reg := prometheus.NewRegistry()
	var metrics gate.Middleware
	if role == gate.RoleClient {
		m, err := NewClientMetrics(reg, opts...)
		if err != nil {
			b.Fatal(err)
		}
		metrics = m.Middleware()
	} else {
		m, err := NewServerMetrics(reg, opts...)
		if err != nil {
			b.Fatal(err)
		}
		metrics = m.Middleware()
	}
	return gate.Chain(Tracing(opts...), metrics, Logging(logger, opts...))
}

var benchReply = &gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{make([]byte, 64)}}

// benchHandler stands for the rest of the call: one 64-byte reply.
var benchHandler = gate.HandlerFunc(func(ctx context.Context, _ *gate.Request, w gate.ReplyWriter) error {
	return w.Send(ctx, benchReply)
})

var benchSink = gate.ReplyWriterFunc(func(context.Context, *gate.Reply) error { return nil })

// BenchmarkClientTracing measures the client's telemetry middleware per
// call, a root call each time (the sampler decides), its metadata
// starting empty as gate.Client's does.
func BenchmarkClientTracing(b *testing.B) {
	body := [][]byte{[]byte("echo"), make([]byte, 64), {0x80}}
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			h := benchChain(b, gate.RoleClient, benchProvider(b, mode.ratio))(benchHandler)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				req := &gate.Request{Service: "demo", Method: "echo", Body: body}
				gatehook.SetRole(req, gate.RoleClient)
				if err := h.ServeRPC(ctx, req, benchSink); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWorkerTracing measures the worker's telemetry middleware per
// call. The requests carry the traceparent a client sampling at the
// mode's ratio sends: sampled in that share of the calls ("off": the
// client's no-op provider sends none).
func BenchmarkWorkerTracing(b *testing.B) {
	body := [][]byte{[]byte("echo"), make([]byte, 64), {0x80}}
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			h := benchChain(b, gate.RoleWorker, benchProvider(b, mode.ratio))(benchHandler)
			mds := make([]map[string]string, 1000)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range mds {
				if mode.ratio < 0 {
					continue
				}
				var tid trace.TraceID
				var sid trace.SpanID
				for j := range tid {
					tid[j] = byte(rng.Uint32())
				}
				for j := range sid {
					sid[j] = byte(rng.Uint32())
				}
				var flags trace.TraceFlags
				if rng.Float64() < mode.ratio {
					flags = trace.FlagsSampled
				}
				sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
				mds[i] = map[string]string{}
				testProp.Inject(trace.ContextWithSpanContext(context.Background(), sc), metadataCarrier(mds[i]))
			}
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				req := &gate.Request{Service: "demo", Method: "echo", Body: body, Metadata: mds[i%len(mds)]}
				gatehook.SetRole(req, gate.RoleWorker)
				if err := h.ServeRPC(ctx, req, benchSink); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// benchParentBased is what telemetry/setup adds for a parent-based
// sampler.
func benchParentBased() []Option { return []Option{WithParentBasedSampling()} }

// benchMetadata returns n request metadata maps as a client sampling at
// ratio sends them (nil maps for ratio < 0: a no-op provider sends none).
func benchMetadata(n int, ratio float64) []map[string]string {
	mds := make([]map[string]string, n)
	if ratio < 0 {
		return mds
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range mds {
		var tid trace.TraceID
		var sid trace.SpanID
		for j := range tid {
			tid[j] = byte(rng.Uint32())
		}
		for j := range sid {
			sid[j] = byte(rng.Uint32())
		}
		var flags trace.TraceFlags
		if rng.Float64() < ratio {
			flags = trace.FlagsSampled
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
		mds[i] = map[string]string{}
		testProp.Inject(trace.ContextWithSpanContext(context.Background(), sc), metadataCarrier(mds[i]))
	}
	return mds
}

// BenchmarkBrokerObserverTracing measures BrokerObserver per request
// (arrival, one dispatch, one reply, finish), called as the broker's loop
// calls it, with the metadata a client sampling at the mode's ratio sends.
// The logger is at Info, as in the binaries: no per-request record.
func BenchmarkBrokerObserverTracing(b *testing.B) {
	body := [][]byte{[]byte("echo"), make([]byte, 64), {0x80}}
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			tp := benchProvider(b, mode.ratio)
			opts := []Option{WithTracerProvider(tp), WithPropagators(testProp)}
			if _, noop := tp.(noop.TracerProvider); !noop {
				opts = append(opts, benchParentBased()...)
			}
			q := NewQueueHandler(slog.NewJSONHandler(io.Discard, nil), QueueOptions{})
			b.Cleanup(func() { _ = q.Close(context.Background()) })
			o := BrokerObserver(slog.New(q), opts...)
			mds := benchMetadata(1000, mode.ratio)
			worker := []byte{0, 0x6b, 0x8b, 0x45, 0x67}
			reply := &gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{make([]byte, 64)}}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				req := &gate.Request{Service: "demo", Method: "echo", Body: body, Metadata: mds[i%len(mds)]}
				gatehook.SetRole(req, gate.RoleBroker)
				if ro := o.Observe(req, now); ro != nil {
					d := broker.Dispatch{Service: req.Service, Worker: worker, Enqueued: now, Assigned: now}
					if req.Metadata != nil {
						d.Metadata = maps.Clone(req.Metadata) // the broker copies it for an observed request
					}
					ro.Dispatch(&d)
					ro.Reply(reply)
					ro.Finish(now, broker.OutcomeOK, nil)
				}
				i++
			}
		})
	}
}
