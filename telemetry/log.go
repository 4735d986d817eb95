package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmittmann/tint"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// DefaultQueueSize is the capacity of a QueueHandler's queue in records.
const DefaultQueueSize = 8192

// QueueOptions configures a QueueHandler. The zero value is usable.
type QueueOptions struct {
	// Size is the queue capacity in records; <= 0 means DefaultQueueSize.
	Size int
}

// QueueHandler is a slog.Handler that never blocks the caller: Handle
// clones the record, adds trace_id and span_id from the ctx's span,
// and puts it on a bounded queue that one drain goroutine feeds to the
// inner handler. When the queue is full the record is dropped and
// counted (see Dropped and Collector).
//
// trace_id and span_id are top-level keys even in a handler returned by
// WithGroup. After records were dropped, the next record written is
// preceded by one Warn record "log records dropped" with the number
// dropped since the last such record (dropped_records).
//
// Handlers returned by WithAttrs and WithGroup share the queue and the
// drain goroutine of the handler they came from. Close stops the drain
// goroutine after flushing; records handled after Close are written
// synchronously. A QueueHandler is safe for concurrent use; the inner
// handler must be too.
type QueueHandler struct {
	inner slog.Handler
	q     *logQueue

	// Set once a group is open: the handler before the first group and
	// what was applied after it, replayed to put trace ids at the top.
	preGroup slog.Handler
	ops      []handlerOp
}

// handlerOp is one WithAttrs (attrs) or WithGroup (group) call.
type handlerOp struct {
	group string
	attrs []slog.Attr
}

var _ slog.Handler = (*QueueHandler)(nil)

type logEntry struct {
	h     slog.Handler
	r     slog.Record
	flush chan struct{} // non-nil: a flush marker, closed when reached
}

// logQueue is a bounded FIFO of records: callers append under mu and
// poke wake (capacity 1, so a busy drain goroutine costs them a failed
// select, not a wakeup); the drain goroutine swaps the whole pending
// slice out and handles it as a batch.
type logQueue struct {
	size     int
	dropped  atomic.Uint64
	root     slog.Handler // the inner handler given to NewQueueHandler
	reported uint64       // drain goroutine only: drops already reported

	mu     sync.Mutex
	buf    []logEntry // pending, len <= size (+ flush markers)
	closed bool

	spare []logEntry // drain goroutine only: the batch slice to reuse

	wake  chan struct{} // capacity 1
	stop  chan struct{} // closed by Close: drain what is queued, then exit
	abort chan struct{} // closed when Close's ctx is done: exit now
	done  chan struct{} // closed by the drain goroutine on exit

	closeOnce sync.Once
	abortOnce sync.Once
}

// NewQueueHandler starts the drain goroutine for inner and returns the
// handler. The caller must call Close to stop it.
func NewQueueHandler(inner slog.Handler, opts QueueOptions) *QueueHandler {
	n := opts.Size
	if n <= 0 {
		n = DefaultQueueSize
	}
	q := &logQueue{
		root:  inner,
		size:  n,
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		abort: make(chan struct{}),
		done:  make(chan struct{}),
	}
	go q.drain()
	return &QueueHandler{inner: inner, q: q}
}

// push appends e unless the queue is closed (false) or full (dropped).
func (q *logQueue) push(e logEntry, force bool) (ok bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if !force && len(q.buf) >= q.size {
		q.mu.Unlock()
		q.dropped.Add(1)
		return true
	}
	q.buf = append(q.buf, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *logQueue) drain() {
	defer close(q.done)
	stopping := false
	for {
		if !stopping {
			select {
			case <-q.wake:
			case <-q.stop:
				stopping = true
			}
		}
		q.mu.Lock()
		batch := q.buf
		q.buf = q.spare[:0]
		q.mu.Unlock()
		if stopping && len(batch) == 0 {
			return
		}
		q.reportDrops()
		for i, e := range batch {
			select {
			case <-q.abort:
				q.mu.Lock()
				n := len(q.buf)
				q.mu.Unlock()
				q.dropped.Add(uint64(len(batch) - i + n))
				return
			default:
			}
			q.handle(e)
		}
		clear(batch) // release the records
		q.spare = batch[:0]
	}
}

// reportDrops writes one Warn record with the number of records dropped
// since the last report, if any were.
func (q *logQueue) reportDrops() {
	n := q.dropped.Load()
	if n == q.reported {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelWarn, "log records dropped", 0)
	r.AddAttrs(slog.Uint64("dropped_records", n-q.reported))
	q.reported = n
	if q.root.Enabled(context.Background(), slog.LevelWarn) {
		_ = q.root.Handle(context.Background(), r)
	}
}

func (q *logQueue) handle(e logEntry) {
	if e.flush != nil {
		close(e.flush)
		return
	}
	// A handler error cannot be returned to anyone; the record is lost
	// like a dropped one, but it is not counted as a drop.
	_ = e.h.Handle(context.Background(), e.r)
}

// Enabled reports whether the inner handler handles records at level.
func (h *QueueHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle queues a clone of r with trace_id and span_id added when ctx
// holds a valid span context. It returns nil even when the record is
// dropped because the queue is full.
func (h *QueueHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	inner := h.inner
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		ids := []slog.Attr{slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String())}
		if h.preGroup == nil {
			r.AddAttrs(ids...)
		} else {
			inner = h.preGroup.WithAttrs(ids)
			for _, op := range h.ops {
				if op.group != "" {
					inner = inner.WithGroup(op.group)
				} else {
					inner = inner.WithAttrs(op.attrs)
				}
			}
		}
	}
	if !h.q.push(logEntry{h: inner, r: r}, false) {
		return inner.Handle(ctx, r) // closed: write synchronously
	}
	return nil
}

// WithAttrs returns a handler that shares h's queue.
func (h *QueueHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	n := &QueueHandler{inner: h.inner.WithAttrs(attrs), q: h.q, preGroup: h.preGroup}
	if h.preGroup != nil {
		n.ops = append(slices.Clip(h.ops), handlerOp{attrs: slices.Clone(attrs)})
	}
	return n
}

// WithGroup returns a handler that shares h's queue.
func (h *QueueHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := &QueueHandler{inner: h.inner.WithGroup(name), q: h.q, preGroup: h.preGroup}
	if n.preGroup == nil {
		n.preGroup = h.inner
	}
	n.ops = append(slices.Clip(h.ops), handlerOp{group: name})
	return n
}

// Dropped returns how many records were dropped because the queue was
// full (or because Close ran out of time), over the life of the queue.
func (h *QueueHandler) Dropped() uint64 { return h.q.dropped.Load() }

// Flush waits until every record queued before the call has been given to
// the inner handler, or ctx is done. It returns ctx.Err() in that case,
// and nil at once after Close.
func (h *QueueHandler) Flush(ctx context.Context) error {
	q := h.q
	mark := make(chan struct{})
	if !q.push(logEntry{flush: mark}, true) {
		return nil
	}
	select {
	case <-mark:
		return nil
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes the queue to the inner handler until ctx is done, then
// stops the drain goroutine and waits for it. Records still queued when
// ctx is done are dropped and counted; Close then returns ctx.Err().
// Close is idempotent and closes the queue of every handler that shares
// it; records handled afterwards go to the inner handler synchronously.
// Close does not close the inner handler's writer.
func (h *QueueHandler) Close(ctx context.Context) error {
	q := h.q
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		close(q.stop)
	})
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		q.abortOnce.Do(func() { close(q.abort) })
		<-q.done // at most one inner Handle call away
		return ctx.Err()
	}
}

// Collector returns a collector of gaterpc_log_records_dropped_total that
// reads Dropped at scrape time. The caller registers it.
func (h *QueueHandler) Collector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gaterpc_log_records_dropped_total",
		Help: "Log records dropped because the log queue was full.",
	}, func() float64 { return float64(h.q.dropped.Load()) })
}

// Log formats accepted by NewLogHandler.
const (
	LogFormatAuto = "auto" // tint when w is a terminal, JSON otherwise
	LogFormatText = "text" // tint, colored only on a terminal
	LogFormatJSON = "json" // slog.JSONHandler
)

// ErrLogFormat is returned by NewLogHandler for an unknown format.
var ErrLogFormat = errors.New("telemetry: unknown log format")

// NewLogHandler returns the inner handler for binaries: tint
// (github.com/lmittmann/tint) for "text", slog.JSONHandler for "json",
// and for "auto" (or "") tint when w is a terminal and JSON otherwise.
// Colors are used only when w is a terminal and NO_COLOR is unset. The
// handler writes synchronously; wrap it in a QueueHandler.
func NewLogHandler(w io.Writer, format string, level slog.Leveler) (slog.Handler, error) {
	tty := isTerminal(w)
	switch format {
	case "", LogFormatAuto:
		if !tty {
			return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), nil
		}
	case LogFormatText:
	case LogFormatJSON:
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), nil
	default:
		return nil, fmt.Errorf("%w %q (want auto, text or json)", ErrLogFormat, format)
	}
	return tint.NewTextHandler(w, &tint.Options{
		Level:      level,
		TimeFormat: "15:04:05.000",
		NoColor:    !tty || os.Getenv("NO_COLOR") != "",
	}), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
