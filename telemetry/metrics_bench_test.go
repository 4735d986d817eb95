package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

// metricsOnly builds the pieces of the chain telemetry/setup installs for
// role when no trace exporter is configured: Tracing with a no-op
// provider, the role's RED metrics, Logging at Info through a
// QueueHandler.
func metricsOnly(b *testing.B, role gate.Role) (tracing, metrics, logging gate.Middleware) {
	b.Helper()
	opts := []Option{WithTracerProvider(noop.NewTracerProvider()), WithPropagators(testProp), WithMethods("demo/echo")}
	q := NewQueueHandler(slog.NewJSONHandler(io.Discard, nil), QueueOptions{})
	b.Cleanup(func() { _ = q.Close(context.Background()) })
	reg := prometheus.NewRegistry()
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
	return Tracing(opts...), metrics, Logging(slog.New(q), opts...)
}

// BenchmarkMetricsChain measures the metrics+logs mode per call and hop:
// the client's and the worker's middleware chain (and each of its three
// parts alone) around a handler that sends one 64-byte reply, and the
// broker's BrokerMetrics fed the events of one request. The client's
// requests carry the empty metadata map gate.Client gives them; the
// worker's carry none, as a client with a no-op provider sends.
// "parallel" runs the chain from GOMAXPROCS goroutines, as calls in
// flight do.
func BenchmarkMetricsChain(b *testing.B) {
	body := [][]byte{[]byte("echo"), make([]byte, 64), {0x80}}
	for _, role := range []gate.Role{gate.RoleClient, gate.RoleWorker} {
		newReq := func() *gate.Request {
			req := &gate.Request{Service: "demo", Method: "echo", Body: body}
			if role == gate.RoleClient {
				req.Metadata = map[string]string{}
			}
			gatehook.SetRole(req, role)
			return req
		}
		tr, me, lo := metricsOnly(b, role)
		parts := []struct {
			name string
			mw   gate.Middleware
		}{
			{"chain", gate.Chain(tr, me, lo)},
			{"tracing", tr},
			{"metrics", me},
			{"logging", lo},
		}
		for _, p := range parts {
			h := p.mw(benchHandler)
			b.Run(role.String()+"/"+p.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if err := h.ServeRPC(ctx, newReq(), benchSink); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		h := parts[0].mw(benchHandler)
		b.Run(role.String()+"/chain/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := h.ServeRPC(ctx, newReq(), benchSink); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("broker/events", func(b *testing.B) {
		m, err := NewBrokerMetrics(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		m.Event(&broker.Event{Kind: broker.EventWorkerReady, Service: "demo"})
		var ev broker.Event
		b.ReportAllocs()
		for b.Loop() {
			// The events of one request, as the broker's loop emits them
			// into one scratch Event.
			now := time.Now()
			ev = broker.Event{Kind: broker.EventRequest, Time: now, Service: "demo"}
			m.Event(&ev)
			ev = broker.Event{Kind: broker.EventDispatched, Time: now, Service: "demo", Wait: 20 * time.Microsecond}
			m.Event(&ev)
			ev = broker.Event{Kind: broker.EventReply, Time: now, Service: "demo", Reply: gate.ReplySingle, Size: 64}
			m.Event(&ev)
			ev = broker.Event{Kind: broker.EventFinished, Time: now, Service: "demo", Outcome: broker.OutcomeOK, Wait: 300 * time.Microsecond}
			m.Event(&ev)
		}
	})
}
