package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// clBenchEnv starts a broker (default heartbeat), one E2E worker and a
// client over inproc.
func clBenchEnv(b *testing.B, wopts ...gate.WorkerOption) *gate.Client {
	b.Helper()
	h := gatetest.StartBrokerOn(b, gatetest.Inproc, broker.WithHeartbeat(gate.DefaultSettings().Heartbeat))
	clStartWorker(b, h, clService(b), append([]gate.WorkerOption{gate.WithHeartbeat(gate.DefaultSettings().Heartbeat)}, wopts...)...)
	c := clNewClient(b, h, gate.WithHeartbeat(gate.DefaultSettings().Heartbeat))
	clWaitReady(b, c)
	return c
}

// BenchmarkClientCall is one echo round trip client → broker → worker →
// broker → client with a 128-byte payload.
func BenchmarkClientCall(b *testing.B) {
	c := clBenchEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(ctx, "E2E.echo", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkClientCallParallel pipelines calls from GOMAXPROCS×16
// goroutines over the one client socket.
func BenchmarkClientCallParallel(b *testing.B) {
	c := clBenchEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := make([]byte, 128)
	b.ReportAllocs()
	b.SetParallelism(16)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(ctx, "E2E.echo", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkClientStream reads a stream of 10,000 ints per op.
func BenchmarkClientStream(b *testing.B) {
	c := clBenchEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const items = 10000
	b.ReportAllocs()
	for b.Loop() {
		s, err := gate.StreamAs[int](ctx, c, "E2E.count", items)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, err := range s.All() {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != items {
			b.Fatalf("%d items", n)
		}
	}
	b.ReportMetric(float64(b.N*items)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkClientHuge receives an 8 MiB HugeData reply (a quarter random)
// per op.
func BenchmarkClientHuge(b *testing.B) {
	for _, comp := range []string{"gzip", "zstd"} {
		b.Run(comp, func(b *testing.B) {
			c := clBenchEnv(b, gate.WithHugeData(comp, 1, 64<<10))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const n = 8 << 20
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				v, err := gate.CallAs[[][]byte](ctx, c, "E2E.huge_parts", n, 1<<20)
				if err != nil || len(v) != 8 {
					b.Fatal(err)
				}
			}
		})
	}
}
