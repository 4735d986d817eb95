package e2e

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/telemetry"
)

const (
	testTimeout = 20 * time.Second
	heartbeat   = 500 * time.Millisecond
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

type env struct {
	sr      *tracetest.SpanRecorder
	tp      *sdktrace.TracerProvider
	reg     *prometheus.Registry
	h       *gatetest.Harness
	c       *gate.Client
	methods []string
	logger  *slog.Logger
	drop    atomic.Bool // stop recording spans in sr (benchmarks)
}

// dropper forwards to a span recorder until drop is set. (The recorder's
// Shutdown does nothing: it would keep every span of a benchmark.)
type dropper struct {
	*tracetest.SpanRecorder
	drop *atomic.Bool
}

func (d dropper) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	if !d.drop.Load() {
		d.SpanRecorder.OnStart(ctx, s)
	}
}

func (d dropper) OnEnd(s sdktrace.ReadOnlySpan) {
	if !d.drop.Load() {
		d.SpanRecorder.OnEnd(s)
	}
}

func service(t testing.TB) *gate.Service {
	t.Helper()
	svc, err := gate.NewService("E2E", "telemetry end-to-end")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(gate.Func1(svc, "echo", func(_ context.Context, v any) (any, error) { return v, nil }))
	must(gate.Func0(svc, "trace", func(ctx context.Context) (string, error) {
		sc := trace.SpanContextFromContext(ctx)
		return fmt.Sprintf("%s sampled=%v", sc.TraceID(), sc.IsSampled()), nil
	}))
	must(gate.Func1(svc, "fail", func(_ context.Context, msg string) (any, error) {
		return nil, &gate.Error{Code: gate.InvalidArgument, Class: "ValueError", Message: "ValueError('" + msg + "')"}
	}))
	must(gate.Func1(svc, "count", func(_ context.Context, n int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := range n {
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	must(gate.Func1(svc, "huge", func(_ context.Context, n int) (any, error) {
		b := make([]byte, n)
		r := rand.NewChaCha8([32]byte{1})
		_, _ = r.Read(b[:n/2])
		return gate.Huge(b), nil
	}))
	must(gate.Func1(svc, "sleep", func(ctx context.Context, ms int) (bool, error) {
		tm := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer tm.Stop()
		select {
		case <-tm.C:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}))
	return svc
}

// mode is how the broker hop is instrumented.
type mode int

const (
	off      mode = iota // no telemetry anywhere: no middleware, observers or collector
	observer             // broker: telemetry.BrokerMetrics and BrokerObserver (what setup and gate-broker use)
	sampled              // observer, with one trace in ten sampled
	untraced             // observer, metrics and logs with a no-op tracer provider
)

func (m mode) String() string {
	return [...]string{"off", "observer", "sampled", "untraced"}[m]
}

// startWith runs an instrumented broker, worker and client sharing one
// tracer provider (spans link only through the metadata on the wire), with
// the broker instrumented as m.
func startWith(t testing.TB, m mode, bopts []broker.Option, wopts ...gate.WorkerOption) *env {
	t.Helper()
	on := m != off
	e := &env{sr: tracetest.NewSpanRecorder(), reg: prometheus.NewPedanticRegistry(), logger: quiet()}
	tpopts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(dropper{e.sr, &e.drop})}
	if m == sampled {
		tpopts = append(tpopts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
	}
	e.tp = sdktrace.NewTracerProvider(tpopts...)
	t.Cleanup(func() { _ = e.tp.Shutdown(context.Background()) })
	svc := service(t)
	for _, m := range svc.Methods() {
		e.methods = append(e.methods, "E2E/"+m)
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	var tp trace.TracerProvider = e.tp
	if m == untraced {
		tp = noop.NewTracerProvider()
	}
	topts := []telemetry.Option{telemetry.WithTracerProvider(tp), telemetry.WithPropagators(prop), telemetry.WithMethods(e.methods...)}
	if m != untraced {
		// Every sampler here is parent-based, as telemetry/setup's.
		topts = append(topts, telemetry.WithParentBasedSampling())
	}

	bm, err := telemetry.NewBrokerMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := telemetry.NewClientMetrics(e.reg, topts...)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := telemetry.NewServerMetrics(e.reg, topts...)
	if err != nil {
		t.Fatal(err)
	}
	all := []broker.Option{broker.WithHeartbeat(heartbeat), broker.WithLogger(quiet())}
	if on {
		all = append(all, broker.WithObserver(bm, telemetry.BrokerObserver(e.logger, topts...)))
	}
	e.h = gatetest.StartBrokerOn(t, gatetest.Inproc, append(all, bopts...)...)
	if on {
		if err := e.reg.Register(telemetry.NewBrokerCollector(e.h.Broker)); err != nil {
			t.Fatal(err)
		}
	}

	wall := []gate.WorkerOption{gate.WithZMQContext(e.h.Ctx), gate.WithHeartbeat(heartbeat), gate.WithLogger(quiet())}
	if on {
		wall = append(wall, gate.WithMiddleware(telemetry.Tracing(topts...), sm.Middleware(), telemetry.Logging(e.logger)))
	}
	wall = append(wall, wopts...)
	w, err := svc.NewWorker(e.h.Backend, wall...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	t.Cleanup(func() {
		w.Close()
		<-errc
	})

	copts := []gate.ClientOption{gate.WithZMQContext(e.h.Ctx), gate.WithHeartbeat(heartbeat), gate.WithLogger(quiet())}
	if on {
		copts = append(copts, gate.WithMiddleware(telemetry.Tracing(topts...), cm.Middleware(), telemetry.Logging(e.logger)))
	}
	e.c, err = gate.NewClient(e.h.Frontend, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.c.Close() })
	ctx := testCtx(t)
	for {
		if _, err := e.c.Call(ctx, "E2E.echo", 1); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("worker never became reachable: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

// traced runs fn under a root span and returns the trace's spans once
// want of them (root included) have ended.
func (e *env) traced(t *testing.T, want int, fn func(ctx context.Context)) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	ctx, root := e.tp.Tracer("test").Start(testCtx(t), "test")
	fn(ctx)
	root.End()
	tid := root.SpanContext().TraceID()
	deadline := time.Now().Add(testTimeout)
	for {
		var got []sdktrace.ReadOnlySpan
		for _, s := range e.sr.Ended() {
			if s.SpanContext().TraceID() == tid {
				got = append(got, s)
			}
		}
		if len(got) >= want || time.Now().After(deadline) {
			m := map[string]sdktrace.ReadOnlySpan{}
			for _, s := range got {
				k := s.SpanKind().String() + " " + s.Name()
				if s.SpanKind() == trace.SpanKindServer {
					role, _ := attr(s, telemetry.AttrRole)
					k += " " + role.AsString()
				}
				if _, dup := m[k]; dup {
					t.Errorf("two spans %q in one trace", k)
				}
				m[k] = s
			}
			if len(got) != want {
				t.Fatalf("trace has %d spans %v, want %d", len(got), keys(m), want)
			}
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, k attribute.Key, want any) {
	t.Helper()
	v, ok := attr(s, k)
	if !ok {
		t.Errorf("%s %q: no attribute %s", s.SpanKind(), s.Name(), k)
	} else if got := v.AsInterface(); got != want {
		t.Errorf("%s %q: %s = %v, want %v", s.SpanKind(), s.Name(), k, got, want)
	}
}

func wantPositive(t *testing.T, s sdktrace.ReadOnlySpan, k attribute.Key) {
	t.Helper()
	if v, ok := attr(s, k); !ok || v.AsInt64() <= 0 {
		t.Errorf("%s %q: %s = %v, want > 0", s.SpanKind(), s.Name(), k, v.AsInterface())
	}
}

func wantChild(t *testing.T, m map[string]sdktrace.ReadOnlySpan, child, parent string) {
	t.Helper()
	c, p := m[child], m[parent]
	if c == nil || p == nil {
		t.Fatalf("missing %q or %q in %v", child, parent, keys(m))
	}
	if c.Parent().SpanID() != p.SpanContext().SpanID() {
		t.Errorf("%q parent = %s, want %q %s", child, c.Parent().SpanID(), parent, p.SpanContext().SpanID())
	}
}

// tree checks client → broker → dispatch → worker, for a call that an
// idle worker took as it arrived: no "queue wait" span, a wait of 0 on
// the dispatch span.
func tree(t *testing.T, m map[string]sdktrace.ReadOnlySpan, method string) {
	t.Helper()
	client, srv, wrk := "client E2E/"+method, "server E2E/"+method+" broker", "server E2E/"+method+" worker"
	wantChild(t, m, client, "internal test")
	wantChild(t, m, srv, client)
	if _, ok := m["internal queue wait"]; ok {
		t.Errorf("a queue wait span for a call dispatched on arrival")
	}
	wantChild(t, m, "client dispatch", srv)
	wantAttr(t, m["client dispatch"], telemetry.AttrQueueWait, 0.0)
	wantChild(t, m, wrk, "client dispatch")
	for _, k := range []string{client, srv, wrk} {
		wantAttr(t, m[k], "rpc.system.name", "gaterpc")
		wantAttr(t, m[k], "rpc.method", "E2E/"+method)
	}
}

// TestTraceUnsampled: a call whose trace is not sampled records no span
// at any hop, and its trace id reaches the worker, with the broker hop
// traced by the observer (which then leaves the request to the broker's
// plain path).
func TestTraceUnsampled(t *testing.T) {
	for _, m := range []mode{observer} {
		t.Run(m.String(), func(t *testing.T) {
			e := startWith(t, m, nil)
			tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
			sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
			ctx := trace.ContextWithSpanContext(testCtx(t), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
			got, err := e.c.Call(ctx, "E2E.trace")
			if want := tid.String() + " sampled=false"; err != nil || got != want {
				t.Fatalf("worker saw %v, %v; want %q", got, err, want)
			}
			for _, s := range e.sr.Started() {
				if s.SpanContext().TraceID() == tid {
					t.Errorf("span %q (%v) recorded for an unsampled trace", s.Name(), s.SpanKind())
				}
			}
		})
	}
}

func TestTraceTree(t *testing.T) {
	for _, m := range []mode{observer} {
		t.Run(m.String(), func(t *testing.T) { testTraceTree(t, m) })
	}
}

func testTraceTree(t *testing.T, mode mode) {
	e := startWith(t, mode, nil, gate.WithHugeData("gzip", 1, 4096))

	t.Run("unary", func(t *testing.T) {
		m := e.traced(t, 5, func(ctx context.Context) {
			if v, err := e.c.Call(ctx, "E2E.echo", "hi"); err != nil || v != "hi" {
				t.Errorf("echo = %v, %v", v, err)
			}
		})
		tree(t, m, "echo")
		for _, k := range []string{"client E2E/echo", "server E2E/echo broker", "server E2E/echo worker"} {
			wantAttr(t, m[k], "rpc.response.status_code", "OK")
			wantAttr(t, m[k], telemetry.AttrReplyKind, "single")
		}
		// The observer knows the worker it dispatched to.
		if v, ok := attr(m["client dispatch"], telemetry.AttrWorkerID); !ok || len(v.AsString()) < 2 {
			t.Errorf("dispatch span: %s = %q, want the worker's id in hex", telemetry.AttrWorkerID, v.AsString())
		}
	})

	t.Run("stream", func(t *testing.T) {
		m := e.traced(t, 5, func(ctx context.Context) {
			s, err := e.c.Stream(ctx, "E2E.count", 5)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n := 0
			for _, err := range s.All() {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 5 {
				t.Errorf("got %d items, want 5", n)
			}
		})
		tree(t, m, "count")
		for _, k := range []string{"client E2E/count", "server E2E/count broker", "server E2E/count worker"} {
			wantAttr(t, m[k], telemetry.AttrStreamItems, int64(5))
			wantAttr(t, m[k], telemetry.AttrReplyKind, "stream")
		}
	})

	t.Run("huge", func(t *testing.T) {
		m := e.traced(t, 5, func(ctx context.Context) {
			v, err := gate.CallAs[[]byte](ctx, e.c, "E2E.huge", 64<<10)
			if err != nil || len(v) != 64<<10 {
				t.Errorf("huge = %d bytes, %v", len(v), err)
			}
		})
		tree(t, m, "huge")
		for _, k := range []string{"client E2E/huge", "server E2E/huge broker", "server E2E/huge worker"} {
			wantPositive(t, m[k], telemetry.AttrHugeChunks)
			wantPositive(t, m[k], telemetry.AttrHugeCompressed)
			wantAttr(t, m[k], telemetry.AttrReplyKind, "huge")
		}
		// The worker counts the payload before compression (the msgpack
		// bin: 64 KiB and its header) as raw bytes, and the chunks as
		// compressed bytes.
		raw := huge(t, e.reg, "raw")
		if raw < 64<<10 || raw > 64<<10+16 {
			t.Errorf("gaterpc_worker_huge_data_bytes_total{kind=raw} = %v, want the 64 KiB payload", raw)
		}
		if huge(t, e.reg, "compressed") <= 0 {
			t.Error("gaterpc_worker_huge_data_bytes_total{kind=compressed} is 0")
		}
	})

	t.Run("error", func(t *testing.T) {
		m := e.traced(t, 5, func(ctx context.Context) {
			_, err := e.c.Call(ctx, "E2E.fail", "no")
			if gate.CodeOf(err) != gate.InvalidArgument {
				t.Errorf("fail = %v, want INVALID_ARGUMENT", err)
			}
		})
		tree(t, m, "fail")
		for _, k := range []string{"client E2E/fail", "server E2E/fail broker", "server E2E/fail worker"} {
			wantAttr(t, m[k], "rpc.response.status_code", "INVALID_ARGUMENT")
			wantAttr(t, m[k], "error.type", "INVALID_ARGUMENT")
		}
	})

	// Metrics of the calls above, from all three hops.
	for _, tc := range []struct {
		name   string
		labels []string
	}{
		{"rpc_client_call_duration_seconds", []string{"E2E/echo", "OK"}},
		{"rpc_client_call_duration_seconds", []string{"E2E/fail", "INVALID_ARGUMENT"}},
		{"rpc_server_call_duration_seconds", []string{"E2E/count", "OK"}},
	} {
		if n := waitHistCount(t, e.reg, func(n uint64) bool { return n > 0 }, tc.name, tc.labels...); n == 0 {
			t.Errorf("%s%v count = 0", tc.name, tc.labels)
		}
	}
	if n := histCount(t, e.reg, "gaterpc_broker_queue_wait_seconds", "E2E"); n < 5 {
		t.Errorf("gaterpc_broker_queue_wait_seconds{E2E} count = %d, want >= 5", n)
	}
	if n := testutil.CollectAndCount(e.reg, "gaterpc_worker_stream_messages_total"); n != 1 {
		t.Errorf("gaterpc_worker_stream_messages_total series = %d", n)
	}
	if n := testutil.CollectAndCount(e.reg, "gaterpc_broker_workers"); n != 3 {
		t.Errorf("gaterpc_broker_workers series = %d, want 3 (idle, busy, full of E2E)", n)
	}
	if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) > 0 {
		t.Errorf("GatherAndLint = %v, %v", problems, err)
	}
}

func TestTraceQueueTimeout(t *testing.T) {
	for _, m := range []mode{observer} {
		t.Run(m.String(), func(t *testing.T) { testTraceQueueTimeout(t, m) })
	}
}

func testTraceQueueTimeout(t *testing.T, md mode) {
	e := startWith(t, md, []broker.Option{broker.WithQueueTimeout(300 * time.Millisecond)}, gate.WithCapacity(1))
	ctx := testCtx(t)
	busy := make(chan error, 1)
	sleep := func() {
		go func() {
			_, err := e.c.Call(ctx, "E2E.sleep", 1500)
			busy <- err
		}()
	}
	sleep()
	// Wait until the sleep call holds the only slot. The worker refuses it
	// (over capacity) if it comes before the warm-up call has released
	// the slot on the worker's side; then it is sent again.
wait:
	for deadline := time.Now().Add(testTimeout); ; {
		select {
		case err := <-busy:
			t.Logf("sleep call ended early (%v); again", err)
			sleep()
		default:
			st := e.h.Broker.Stats()
			if len(st.Services) > 0 && st.Services[0].InFlight > 0 {
				time.Sleep(20 * time.Millisecond) // refused calls come back at once
				if len(busy) == 0 && e.h.Broker.Stats().Services[0].InFlight > 0 {
					break wait
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep call never dispatched")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := e.traced(t, 4, func(ctx context.Context) {
		_, err := e.c.Call(ctx, "E2E.echo", 1)
		if c := gate.CodeOf(err); c != gate.ResourceExhausted && c != gate.DeadlineExceeded {
			t.Errorf("queued call = %v, want RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED", err)
		}
	})
	wantChild(t, m, "server E2E/echo broker", "client E2E/echo")
	wantChild(t, m, "internal queue wait", "server E2E/echo broker")
	wantAttr(t, m["internal queue wait"], telemetry.AttrQueueExpired, true)
	if err := <-busy; err != nil {
		t.Errorf("sleep call: %v", err)
	}
	if n := waitHistCount(t, e.reg, func(n uint64) bool { return n == 1 }, "gaterpc_broker_request_duration_seconds", broker.OutcomeExpired, "E2E"); n != 1 {
		t.Errorf("request_duration{E2E,expired} count = %d, want 1", n)
	}
}

// waitHistCount polls histCount until ok accepts the count or the test
// timeout passes: hops record a call's metrics after its reply is on its
// way, so the caller can see the reply first.
func waitHistCount(t *testing.T, g prometheus.Gatherer, ok func(uint64) bool, name string, lv ...string) uint64 {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		n := histCount(t, g, name, lv...)
		if ok(n) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// histCount returns the sample count of the series of a histogram whose
// label values (in label-name order) are lv.
func histCount(t *testing.T, g prometheus.Gatherer, name string, lv ...string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			ls := m.GetLabel()
			if len(ls) != len(lv) {
				continue
			}
			for i, l := range ls {
				if l.GetValue() != lv[i] {
					continue metrics
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// benchModes are the configurations BenchmarkCall and
// BenchmarkCallParallel compare: all telemetry off; all on (100% sampling
// into a span recorder that keeps nothing, metrics, logging at Info
// through a QueueHandler) with the broker hop traced by BrokerObserver, as
// gate-broker does; all on with one trace in ten sampled; and metrics and logs with
// a no-op tracer provider (the cost of the kit's own middleware, without
// the OpenTelemetry SDK).
var benchModes = []struct {
	name string
	mode mode
}{
	{"telemetry=off", off},
	{"telemetry=on", observer},
	{"telemetry=on,sampling=10%", sampled},
	{"telemetry=on,tracing=off", untraced},
}

// benchEnv starts an environment for a benchmark in mode m.
func benchEnv(b *testing.B, m mode) *env {
	e := startWith(b, m, nil)
	if m != off {
		qh := telemetry.NewQueueHandler(slog.NewJSONHandler(io.Discard, nil), telemetry.QueueOptions{})
		b.Cleanup(func() { _ = qh.Close(context.Background()) })
		*e.logger = *slog.New(qh)
		// Sample and end every span, but keep none: the recorder's list
		// would grow for the whole run.
		e.drop.Store(true)
		e.sr.Reset()
	}
	return e
}

// BenchmarkCall compares calls/s of serial calls in the benchModes, in
// the same run.
func BenchmarkCall(b *testing.B) {
	for _, size := range []int{128, 16 << 10} {
		payload := strings.Repeat("x", size)
		for _, bm := range benchModes {
			b.Run(fmt.Sprintf("%dB/%s", size, bm.name), func(b *testing.B) {
				e := benchEnv(b, bm.mode)
				ctx := testCtx(b)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				cpu := processCPU()
				for b.Loop() {
					if _, err := e.c.Call(ctx, "E2E.echo", payload); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// BenchmarkCallParallel is BenchmarkCall under load: 16×GOMAXPROCS
// goroutines share the one client, so calls are pipelined through the
// broker and the worker. It reports calls/s; compare the modes of the
// same run.
func BenchmarkCallParallel(b *testing.B) {
	for _, size := range []int{128, 16 << 10} {
		payload := strings.Repeat("x", size)
		for _, bm := range benchModes {
			b.Run(fmt.Sprintf("%dB/%s", size, bm.name), func(b *testing.B) {
				e := benchEnv(b, bm.mode)
				b.SetBytes(int64(size))
				parallelCalls(b, e, payload)
			})
		}
	}
}

// parallelCalls runs b.N calls of E2E.echo from 16×GOMAXPROCS goroutines
// and reports calls/s.
func parallelCalls(b *testing.B, e *env, payload string) {
	ctx := testCtx(b)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.c.Call(ctx, "E2E.echo", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	reportCPU(b, cpu)
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per call since since (a
// processCPU reading): client, broker, worker, runtime and telemetry
// together, whichever core they ran on. Unlike ns/op it does not fall
// when work spreads over more cores.
func reportCPU(b *testing.B, since time.Duration) {
	if since == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64((processCPU()-since).Microseconds())/float64(b.N), "cpu-µs/call")
}

// huge sums gaterpc_worker_huge_data_bytes_total{kind} over methods.
func huge(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "gaterpc_worker_huge_data_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" && lp.GetValue() == kind {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
