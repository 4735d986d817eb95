package setup

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// chanExporter records the names of the spans it exports. When block is
// not nil, every ExportSpans first says so on entered and waits for block
// to be closed (or its ctx).
type chanExporter struct {
	mu       sync.Mutex
	names    []string
	batches  []int
	exported chan struct{} // capacity 1: poked after each ExportSpans
	entered  chan struct{}
	block    chan struct{}
	shutdown bool
	down     chan struct{} // closed by Shutdown
}

func newChanExporter() *chanExporter {
	return &chanExporter{exported: make(chan struct{}, 1), down: make(chan struct{})}
}

func (e *chanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.block != nil {
		select {
		case e.entered <- struct{}{}:
		default:
		}
		select {
		case <-e.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	for _, s := range spans {
		e.names = append(e.names, s.Name())
	}
	e.batches = append(e.batches, len(spans))
	e.mu.Unlock()
	select {
	case e.exported <- struct{}{}:
	default:
	}
	return nil
}

func (e *chanExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.shutdown {
		e.shutdown = true
		close(e.down)
	}
	return nil
}

func (e *chanExporter) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.names)
}

// span returns an ended span named name, sampled or not.
func span(name string, sampled bool) sdktrace.ReadOnlySpan {
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return tracetest.SpanStub{Name: name, SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: flags,
	})}.Snapshot()
}

// hour is a schedule delay no test waits for.
const hour = time.Hour

// TestBatchShutdownExportsAll: spans queued below a batch are exported
// by Shutdown, in order, then the exporter is shut down; unsampled spans
// and spans ended after Shutdown are not exported.
func TestBatchShutdownExportsAll(t *testing.T) {
	e := newChanExporter()
	p := NewBatchSpanProcessor(e, BatchOptions{MaxExportBatchSize: 100, ScheduleDelay: hour})
	p.OnEnd(span("a", true))
	p.OnEnd(span("skip", false))
	p.OnEnd(span("b", true))
	p.OnEnd(span("c", true))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p.OnEnd(span("late", true))
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if got := e.names; len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Errorf("exported %v, want [a b c]", got)
	}
	if !e.shutdown {
		t.Error("exporter not shut down")
	}
	if n := p.Dropped(); n != 0 {
		t.Errorf("Dropped = %d, want 0", n)
	}
}

// TestBatchForceFlush: ForceFlush exports every span ended before it,
// in batches of at most MaxExportBatchSize.
func TestBatchForceFlush(t *testing.T) {
	e := newChanExporter()
	p := NewBatchSpanProcessor(e, BatchOptions{MaxExportBatchSize: 1000, ScheduleDelay: hour})
	defer p.Shutdown(context.Background())
	for range 5 {
		p.OnEnd(span("s", true))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(); n != 5 {
		t.Errorf("exported %d spans after ForceFlush, want 5", n)
	}
}

// TestBatchFullBatchWakesExporter: a full batch is exported without a
// flush and long before ScheduleDelay, as one ExportSpans call of
// MaxExportBatchSize spans.
func TestBatchFullBatchWakesExporter(t *testing.T) {
	e := newChanExporter()
	p := NewBatchSpanProcessor(e, BatchOptions{MaxExportBatchSize: 4, ScheduleDelay: hour})
	defer p.Shutdown(context.Background())
	for range 4 {
		p.OnEnd(span("s", true))
	}
	select {
	case <-e.exported:
	case <-time.After(testTimeout):
		t.Fatal("a full batch was not exported")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.batches) != 1 || e.batches[0] != 4 {
		t.Errorf("batches %v, want [4]", e.batches)
	}
}

// TestBatchScheduleDelay: spans below a batch are exported after
// ScheduleDelay without a flush.
func TestBatchScheduleDelay(t *testing.T) {
	e := newChanExporter()
	p := NewBatchSpanProcessor(e, BatchOptions{MaxExportBatchSize: 100, ScheduleDelay: time.Millisecond})
	defer p.Shutdown(context.Background())
	p.OnEnd(span("s", true))
	select {
	case <-e.exported:
	case <-time.After(testTimeout):
		t.Fatal("the span was not exported after ScheduleDelay")
	}
	if n := e.count(); n != 1 {
		t.Errorf("exported %d spans, want 1", n)
	}
}

// TestBatchFullQueueDrops: while the exporter is stuck, OnEnd does not
// block: it queues up to MaxQueueSize spans and drops and counts the
// rest; the queued ones are exported once the exporter moves again.
func TestBatchFullQueueDrops(t *testing.T) {
	e := newChanExporter()
	e.entered, e.block = make(chan struct{}, 1), make(chan struct{})
	p := NewBatchSpanProcessor(e, BatchOptions{MaxQueueSize: 2, MaxExportBatchSize: 1, ScheduleDelay: hour})
	p.OnEnd(span("taken", true)) // wakes the goroutine, which blocks exporting it
	<-e.entered
	for range 5 {
		p.OnEnd(span("s", true))
	}
	if n := p.Dropped(); n != 3 {
		t.Errorf("Dropped = %d, want 3", n)
	}
	close(e.block)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(); n != 3 {
		t.Errorf("exported %d spans, want 3 (1 taken + 2 queued)", n)
	}
}

// TestBatchShutdownTimeout: a Shutdown whose ctx ends while an export is
// stuck returns the ctx error and counts the spans still queued as
// dropped; the exporter is shut down once the stuck export returns.
func TestBatchShutdownTimeout(t *testing.T) {
	e := newChanExporter()
	e.entered, e.block = make(chan struct{}, 1), make(chan struct{})
	p := NewBatchSpanProcessor(e, BatchOptions{MaxExportBatchSize: 1, ScheduleDelay: hour, ExportTimeout: hour})
	p.OnEnd(span("taken", true))
	<-e.entered
	p.OnEnd(span("queued", true))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	if n := p.Dropped(); n != 1 {
		t.Errorf("Dropped = %d, want 1", n)
	}
	select {
	case <-e.down:
		t.Error("exporter shut down during an export")
	default:
	}
	close(e.block)
	select {
	case <-e.down:
	case <-time.After(testTimeout):
		t.Fatal("exporter not shut down after the stuck export")
	}
}

// TestBatchOptionsFromEnv: the OTEL_BSP_* variables, milliseconds for
// the durations; bad values keep the defaults; the batch is capped at
// the queue size.
func TestBatchOptionsFromEnv(t *testing.T) {
	env := map[string]string{
		"OTEL_BSP_MAX_QUEUE_SIZE":        "100",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "200",
		"OTEL_BSP_SCHEDULE_DELAY":        "250",
		"OTEL_BSP_EXPORT_TIMEOUT":        "x",
	}
	o := BatchOptionsFromEnv(func(k string) string { return env[k] }).withDefaults()
	want := BatchOptions{MaxQueueSize: 100, MaxExportBatchSize: 100, ScheduleDelay: 250 * time.Millisecond, ExportTimeout: DefaultExportTimeout}
	if o != want {
		t.Errorf("options = %+v, want %+v", o, want)
	}
	if o := BatchOptionsFromEnv(func(string) string { return "" }).withDefaults(); o != (BatchOptions{
		MaxQueueSize: DefaultMaxQueueSize, MaxExportBatchSize: DefaultMaxExportBatchSize,
		ScheduleDelay: DefaultScheduleDelay, ExportTimeout: DefaultExportTimeout}) {
		t.Errorf("defaults = %+v", o)
	}
}
