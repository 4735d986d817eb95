package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/telemetry"
)

// BenchmarkBrokerHopObserved is BenchmarkBrokerHop with telemetry's broker
// observers on the broker's loop: BrokerMetrics (latency histograms) and
// BrokerObserver tracing every request, its spans batched into an
// exporter that discards them. Allocations per op include the tracing
// SDK's own (about 7 per span, 3 spans per request).
func BenchmarkBrokerHopObserved(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.Name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			bm, err := telemetry.NewBrokerMetrics(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			h := gatetest.StartBrokerOn(b, tr, broker.WithHeartbeat(time.Second),
				broker.WithObserver(bm, telemetry.BrokerObserver(nil, telemetry.WithTracerProvider(tp))))
			stop := startEcho(b, h.Ctx, h.Backend, true)
			defer stop()
			c := gatetest.Dial(b, h.Ctx, h.Frontend, gatetest.NewID("bc"))
			gatetest.WaitFor(b, gatetest.TestTimeout, "echo worker", func() bool { return h.Broker.Stats().Workers == 1 })
			runClient(b, c, true, benchInFlight)
		})
	}
}

// BenchmarkBrokerHopAdmission is BenchmarkBrokerHop with an admission
// filter (WithAdmission) that reads each request's metadata and admits
// it: the cost of a broker-side check, run on the loop.
func BenchmarkBrokerHopAdmission(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.Name, func(b *testing.B) {
			admit := func(req *gate.Request) error {
				if req.Metadata["deny"] != "" {
					return gate.Errorf(gate.ResourceExhausted, "denied")
				}
				return nil
			}
			h := gatetest.StartBrokerOn(b, tr, broker.WithHeartbeat(time.Second), broker.WithAdmission(admit))
			stop := startEcho(b, h.Ctx, h.Backend, true)
			defer stop()
			c := gatetest.Dial(b, h.Ctx, h.Frontend, gatetest.NewID("bc"))
			gatetest.WaitFor(b, gatetest.TestTimeout, "echo worker", func() bool { return h.Broker.Stats().Workers == 1 })
			runClient(b, c, true, benchInFlight)
		})
	}
}
