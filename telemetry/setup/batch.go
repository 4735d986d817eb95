package setup

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Defaults of BatchOptions, as the OpenTelemetry specification and the
// SDK's batch span processor have them.
const (
	DefaultMaxQueueSize       = 2048
	DefaultMaxExportBatchSize = 512
	DefaultScheduleDelay      = 5 * time.Second
	DefaultExportTimeout      = 30 * time.Second
)

// BatchOptions configures NewBatchSpanProcessor. Zero fields take the
// defaults above.
type BatchOptions struct {
	// MaxQueueSize bounds the spans waiting for export; spans ended while
	// it is full are dropped and counted (Dropped).
	MaxQueueSize int
	// MaxExportBatchSize is the most spans given to one ExportSpans call,
	// and the queue length at which the export goroutine is woken before
	// ScheduleDelay. It is capped at MaxQueueSize.
	MaxExportBatchSize int
	// ScheduleDelay is the longest a span waits before an export when
	// fewer than MaxExportBatchSize are queued.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one ExportSpans call of the export goroutine.
	ExportTimeout time.Duration
}

// BatchOptionsFromEnv reads OTEL_BSP_MAX_QUEUE_SIZE,
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY and
// OTEL_BSP_EXPORT_TIMEOUT (milliseconds) as the SDK's batch span
// processor does: a missing, malformed or non-positive value keeps the
// default.
func BatchOptionsFromEnv(getenv func(string) string) BatchOptions {
	num := func(key string) int {
		n, err := strconv.Atoi(strings.TrimSpace(getenv(key)))
		if err != nil || n <= 0 {
			return 0
		}
		return n
	}
	return BatchOptions{
		MaxQueueSize:       num("OTEL_BSP_MAX_QUEUE_SIZE"),
		MaxExportBatchSize: num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
		ScheduleDelay:      time.Duration(num("OTEL_BSP_SCHEDULE_DELAY")) * time.Millisecond,
		ExportTimeout:      time.Duration(num("OTEL_BSP_EXPORT_TIMEOUT")) * time.Millisecond,
	}
}

func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxQueueSize <= 0 {
		o.MaxQueueSize = DefaultMaxQueueSize
	}
	if o.MaxExportBatchSize <= 0 {
		o.MaxExportBatchSize = DefaultMaxExportBatchSize
	}
	o.MaxExportBatchSize = min(o.MaxExportBatchSize, o.MaxQueueSize)
	if o.ScheduleDelay <= 0 {
		o.ScheduleDelay = DefaultScheduleDelay
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = DefaultExportTimeout
	}
	return o
}

// BatchSpanProcessor is an sdktrace.SpanProcessor that exports sampled
// spans in batches, like the SDK's batch span processor, with a cheaper
// hand-off: OnEnd appends the span to a slice under a mutex and wakes the
// export goroutine only when the slice reaches MaxExportBatchSize (one
// non-blocking channel send per batch, not per span); otherwise the
// goroutine exports what has gathered every ScheduleDelay. OnEnd never
// blocks on the exporter: when MaxQueueSize spans are waiting, the span
// is dropped and counted.
//
// ForceFlush exports every span ended before it; Shutdown does the same,
// then shuts the exporter down. ExportSpans is never called concurrently.
// It is safe for concurrent use.
type BatchSpanProcessor struct {
	exp sdktrace.SpanExporter
	o   BatchOptions

	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan
	spare   []sdktrace.ReadOnlySpan // the last exported slice, for reuse
	stopped bool

	dropped atomic.Uint64

	// exportMu serializes the exports of the goroutine, ForceFlush and
	// Shutdown, and guards left.
	exportMu sync.Mutex
	left     []sdktrace.ReadOnlySpan // taken but not exported: ctx was done

	wake     chan struct{} // capacity 1: a full batch is waiting
	stop     chan struct{} // closed by Shutdown
	done     chan struct{} // closed when the export goroutine returns
	stopOnce sync.Once
	shutErr  error
}

var _ sdktrace.SpanProcessor = (*BatchSpanProcessor)(nil)

// NewBatchSpanProcessor starts the export goroutine of exp. The caller
// must call Shutdown (a TracerProvider does, from its own Shutdown).
func NewBatchSpanProcessor(exp sdktrace.SpanExporter, o BatchOptions) *BatchSpanProcessor {
	o = o.withDefaults()
	p := &BatchSpanProcessor{
		exp:   exp,
		o:     o,
		queue: make([]sdktrace.ReadOnlySpan, 0, o.MaxExportBatchSize),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go p.run()
	return p
}

// OnStart implements sdktrace.SpanProcessor; it does nothing.
func (*BatchSpanProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export if it is sampled.
func (p *BatchSpanProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	n := len(p.queue)
	if n >= p.o.MaxQueueSize {
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	}
	p.queue = append(p.queue, s)
	p.mu.Unlock()
	// Wake the goroutine each time another full batch is waiting (the
	// queue can grow by several while it exports).
	if (n+1)%p.o.MaxExportBatchSize == 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped returns how many sampled spans were dropped because the queue
// was full.
func (p *BatchSpanProcessor) Dropped() uint64 { return p.dropped.Load() }

func (p *BatchSpanProcessor) run() {
	defer close(p.done)
	t := time.NewTimer(p.o.ScheduleDelay)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.o.ExportTimeout)
		if err := p.export(ctx); err != nil {
			otel.Handle(err)
		}
		cancel()
		t.Reset(p.o.ScheduleDelay)
	}
}

// export exports every queued span, in batches of at most
// MaxExportBatchSize, until ctx is done. Spans taken and not exported
// when ctx is done stay in p.left for the next export.
func (p *BatchSpanProcessor) export(ctx context.Context) error {
	p.exportMu.Lock()
	defer p.exportMu.Unlock()
	p.mu.Lock()
	batch := p.queue
	p.queue, p.spare = p.spare, nil
	p.mu.Unlock()
	if len(p.left) > 0 {
		batch = append(p.left, batch...)
		p.left = nil
	}
	var errs []error
	for i := 0; i < len(batch); {
		if err := ctx.Err(); err != nil {
			p.left = slices.Clone(batch[i:])
			clear(batch)
			return errors.Join(append(errs, err)...)
		}
		n := min(len(batch)-i, p.o.MaxExportBatchSize)
		if err := p.exp.ExportSpans(ctx, batch[i:i+n]); err != nil {
			errs = append(errs, err)
		}
		i += n
	}
	clear(batch) // release the spans
	p.mu.Lock()
	if p.spare == nil {
		p.spare = batch[:0]
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

// ForceFlush exports every span ended before the call, waiting for an
// export in progress, or returns ctx's error when ctx is done first.
func (p *BatchSpanProcessor) ForceFlush(ctx context.Context) error {
	return p.export(ctx)
}

// Shutdown stops queueing, stops the export goroutine, exports the spans
// still queued and shuts the exporter down, each within ctx. Spans left
// unexported when ctx is done are counted as dropped. Later calls return
// the first call's error.
func (p *BatchSpanProcessor) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
			// The goroutine is in an export and exits after it; what it
			// has not taken is lost. The exporter is shut down after that
			// export, not concurrently with it.
			p.mu.Lock()
			p.dropped.Add(uint64(len(p.queue)))
			p.mu.Unlock()
			go func() {
				<-p.done
				if err := p.exp.Shutdown(context.WithoutCancel(ctx)); err != nil {
					otel.Handle(err)
				}
			}()
			p.shutErr = ctx.Err()
			return
		}
		err := p.export(ctx)
		p.exportMu.Lock()
		p.dropped.Add(uint64(len(p.left)))
		p.left = nil
		p.exportMu.Unlock()
		p.shutErr = errors.Join(err, p.exp.Shutdown(ctx))
	})
	return p.shutErr
}

// envBatchOptions is BatchOptionsFromEnv with os.Getenv.
func envBatchOptions() BatchOptions { return BatchOptionsFromEnv(os.Getenv) }
