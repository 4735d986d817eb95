package setup

import (
	"context"
	"hash/crc32"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var work = make([]byte, 128<<10)

// BenchmarkSpanProcessor compares the SDK's batcher with
// BatchSpanProcessor, starting and ending one sampled span per
// iteration. "busy" does nothing else, on GOMAXPROCS goroutines, so the
// export goroutine never waits; "paced" does some other work per span
// (a CRC of 128 KiB, about 10 µs) on one goroutine, as a socket loop
// does between requests, so the SDK's export goroutine parks between
// spans and each span can cost a wake-up of it, and of an idle thread
// for it. cpu-ns/op is the process's CPU time (all threads) per span.
func BenchmarkSpanProcessor(b *testing.B) {
	procs := map[string]func() sdktrace.SpanProcessor{
		"sdk":   func() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(discardExporter{}) },
		"batch": func() sdktrace.SpanProcessor { return NewBatchSpanProcessor(discardExporter{}, BatchOptions{}) },
	}
	for _, pace := range []string{"busy", "paced"} {
		for _, name := range []string{"sdk", "batch"} {
			b.Run(pace+"/"+name, func(b *testing.B) {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(procs[name]()))
				defer tp.Shutdown(context.Background())
				tr := tp.Tracer("bench")
				b.ReportAllocs()
				ctx := context.Background()
				cpu := cpuTime()
				if pace == "paced" {
					var sum uint32
					for b.Loop() {
						sum += crc32.ChecksumIEEE(work)
						_, s := tr.Start(ctx, "span")
						s.End()
					}
					_ = sum
				} else {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							_, s := tr.Start(ctx, "span")
							s.End()
						}
					})
				}
				b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
