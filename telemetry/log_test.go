package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for the drain goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestQueueHandlerSlogtest(t *testing.T) {
	type state struct {
		h   *QueueHandler
		buf *syncBuffer
	}
	var (
		mu     sync.Mutex
		states = map[*testing.T]state{}
	)
	slogtest.Run(t, func(t *testing.T) slog.Handler {
		buf := &syncBuffer{}
		h := NewQueueHandler(slog.NewJSONHandler(buf, nil), QueueOptions{})
		t.Cleanup(func() { _ = h.Close(testCtx(t)) })
		mu.Lock()
		states[t] = state{h, buf}
		mu.Unlock()
		return h
	}, func(t *testing.T) map[string]any {
		mu.Lock()
		s := states[t]
		mu.Unlock()
		if err := s.h.Close(testCtx(t)); err != nil {
			t.Fatalf("Close: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s.buf.String()), &m); err != nil {
			t.Fatalf("unmarshal %q: %v", s.buf.String(), err)
		}
		return m
	})
}

func TestQueueHandlerTraceIDs(t *testing.T) {
	ctx := testCtx(t)
	buf := &syncBuffer{}
	h := NewQueueHandler(slog.NewJSONHandler(buf, nil), QueueOptions{})
	defer h.Close(ctx)
	tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	l := slog.New(h).With(KeyRPCMethod, "Svc/m")
	l.InfoContext(sctx, "call", slog.String(KeyStatusCode, "OK"))
	l.InfoContext(ctx, "no span")
	if err := h.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{KeyTraceID: tid.String(), KeySpanID: sid.String(), KeyRPCMethod: "Svc/m", KeyStatusCode: "OK"} {
		if m[k] != want {
			t.Errorf("line 1 %s = %v, want %s", k, m[k], want)
		}
	}
	if strings.Contains(lines[1], KeyTraceID) {
		t.Errorf("line 2 has a trace id without a span: %s", lines[1])
	}
}

// blockingHandler blocks Handle until release is closed.
type blockingHandler struct {
	slog.Handler
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (b *blockingHandler) Handle(ctx context.Context, r slog.Record) error {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.Handler.Handle(ctx, r)
}

func TestQueueHandlerDropsWhenFull(t *testing.T) {
	ctx := testCtx(t)
	buf := &syncBuffer{}
	inner := &blockingHandler{Handler: slog.NewJSONHandler(buf, nil), entered: make(chan struct{}), release: make(chan struct{})}
	h := NewQueueHandler(inner, QueueOptions{Size: 4})
	l := slog.New(h)
	l.Info("first") // taken by the drain goroutine, which then blocks
	<-inner.entered
	for i := range 10 {
		l.Info("more", "i", i)
	}
	if got := h.Dropped(); got != 6 {
		t.Errorf("Dropped() = %d, want 6", got)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.Collector())
	if got := testutil.ToFloat64(h.Collector()); got != 6 {
		t.Errorf("gaterpc_log_records_dropped_total = %v, want 6", got)
	}
	close(inner.release)
	if err := h.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The 5 records kept, and before the first one written after the
	// drops, one record that says how many were dropped.
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("wrote %d records, want 5 and a drop report: %q", len(lines), buf.String())
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rep); err != nil {
		t.Fatal(err)
	}
	if rep["msg"] != "log records dropped" || rep["level"] != "WARN" || rep["dropped_records"] != float64(6) {
		t.Errorf("drop report = %v, want WARN \"log records dropped\" with dropped_records 6", rep)
	}
	// After Close, records are written synchronously.
	l.Info("late")
	if !strings.Contains(buf.String(), `"late"`) {
		t.Errorf("record after Close was not written")
	}
	if err := h.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// In a grouped logger, trace_id and span_id stay top-level keys.
func TestQueueHandlerTraceIDsOutsideGroups(t *testing.T) {
	ctx := testCtx(t)
	buf := &syncBuffer{}
	h := NewQueueHandler(slog.NewJSONHandler(buf, nil), QueueOptions{})
	defer h.Close(ctx)
	tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	l := slog.New(h).With("a", 1).WithGroup("req").With("b", 2).WithGroup("inner")
	l.InfoContext(sctx, "call", "c", 3)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &m); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	req, _ := m["req"].(map[string]any)
	inner, _ := req["inner"].(map[string]any)
	if m[KeyTraceID] != tid.String() || m[KeySpanID] != sid.String() || m["a"] != float64(1) ||
		req["b"] != float64(2) || inner["c"] != float64(3) || req[KeyTraceID] != nil || inner[KeyTraceID] != nil {
		t.Fatalf("record = %s, want trace ids at the top and the groups kept", buf.String())
	}
}

func TestQueueHandlerCloseDeadline(t *testing.T) {
	inner := &blockingHandler{Handler: slog.NewJSONHandler(io.Discard, nil), entered: make(chan struct{}), release: make(chan struct{})}
	h := NewQueueHandler(inner, QueueOptions{Size: 8})
	l := slog.New(h)
	for range 5 {
		l.Info("x")
	}
	<-inner.entered
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.Close(ctx) }()
	<-h.q.abort          // Close gave up waiting
	close(inner.release) // let the one record in the inner handler finish
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if got := h.Dropped(); got == 0 {
		t.Errorf("Dropped() = 0, want the records left in the queue counted")
	}
}

func TestQueueHandlerSharedQueue(t *testing.T) {
	ctx := testCtx(t)
	buf := &syncBuffer{}
	h := NewQueueHandler(slog.NewJSONHandler(buf, nil), QueueOptions{})
	a := slog.New(h).With("a", 1).WithGroup("g")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				a.Info("m", "i", i, "j", j)
			}
		})
	}
	wg.Wait()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 800 {
		t.Errorf("wrote %d lines, want 800", n)
	}
	if !strings.Contains(buf.String(), `"g":{"i":`) {
		t.Errorf("group missing: %.200s", buf.String())
	}
}

func TestNewLogHandler(t *testing.T) {
	tests := []struct {
		name, format string
		wantJSON     bool
		wantErr      bool
	}{
		{"auto non-tty is JSON", "auto", true, false},
		{"empty is auto", "", true, false},
		{"json", "json", true, false},
		{"text is tint", "text", false, false},
		{"bad", "xml", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h, err := NewLogHandler(&buf, tt.format, slog.LevelInfo)
			if tt.wantErr {
				if !errors.Is(err, ErrLogFormat) {
					t.Fatalf("NewLogHandler(%q) err = %v, want ErrLogFormat", tt.format, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := slog.New(h)
			l.Debug("hidden")
			l.Info("shown", KeyRPCMethod, "S/m")
			out := buf.String()
			if strings.Contains(out, "hidden") {
				t.Errorf("debug record written at info level: %q", out)
			}
			if got := json.Valid([]byte(strings.TrimSpace(out))); got != tt.wantJSON {
				t.Errorf("JSON = %v, want %v: %q", got, tt.wantJSON, out)
			}
			if !strings.Contains(out, "rpc.method") {
				t.Errorf("key missing: %q", out)
			}
		})
	}
}

func BenchmarkQueueHandler(b *testing.B) {
	ctx := context.Background()
	tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	attrs := []slog.Attr{slog.String(KeyRPCMethod, "Svc/method"), slog.String(KeyStatusCode, "OK"), slog.Float64(KeyDuration, 0.0123)}
	run := func(b *testing.B, h slog.Handler, ctx context.Context) {
		l := slog.New(h)
		b.ReportAllocs()
		for b.Loop() {
			l.LogAttrs(ctx, slog.LevelInfo, "call", attrs...)
		}
	}
	b.Run("json-direct", func(b *testing.B) {
		run(b, slog.NewJSONHandler(io.Discard, nil), sctx)
	})
	b.Run("queue-json", func(b *testing.B) {
		h := NewQueueHandler(slog.NewJSONHandler(io.Discard, nil), QueueOptions{})
		run(b, h, sctx)
		b.StopTimer()
		_ = h.Close(ctx)
		b.ReportMetric(float64(h.Dropped())/float64(b.N), "drops/op")
	})
	b.Run("queue-json-parallel", func(b *testing.B) {
		h := NewQueueHandler(slog.NewJSONHandler(io.Discard, nil), QueueOptions{})
		l := slog.New(h)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.LogAttrs(sctx, slog.LevelInfo, "call", attrs...)
			}
		})
		b.StopTimer()
		_ = h.Close(ctx)
		b.ReportMetric(float64(h.Dropped())/float64(b.N), "drops/op")
	})
	b.Run("queue-nop-inner", func(b *testing.B) {
		// The caller-side cost alone: the inner handler does nothing,
		// so the drain goroutine keeps up and nothing is dropped.
		h := NewQueueHandler(nopHandler{}, QueueOptions{})
		run(b, h, sctx)
		b.StopTimer()
		_ = h.Close(ctx)
		b.ReportMetric(float64(h.Dropped())/float64(b.N), "drops/op")
	})
	b.Run("queue-disabled-level", func(b *testing.B) {
		h := NewQueueHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}), QueueOptions{})
		run(b, h, sctx)
		b.StopTimer()
		_ = h.Close(ctx)
	})
}

// nopHandler handles every record by doing nothing.
type nopHandler struct{}

func (nopHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (nopHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nopHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nopHandler) WithGroup(string) slog.Handler           { return h }
