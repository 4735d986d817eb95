package telemetry

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fakeClock advances by step on every reading.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func withClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// stubStats is a scripted broker.Stats source.
type stubStats struct{ s broker.Stats }

func (s *stubStats) Stats() broker.Stats { return s.s }

// call runs one request through h at role with the given replies and
// final error.
func call(t testing.TB, ctx context.Context, h gate.Middleware, role gate.Role, service, method string, body [][]byte, replies []*gate.Reply, err error) error {
	t.Helper()
	req := &gate.Request{Service: service, Method: method, Body: body, Metadata: map[string]string{}}
	gatehook.SetRole(req, role)
	inner := gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
		for _, r := range replies {
			if err := w.Send(ctx, r); err != nil {
				return err
			}
		}
		return err
	})
	sink := gate.ReplyWriterFunc(func(context.Context, *gate.Reply) error { return nil })
	return h(inner).ServeRPC(ctx, req, sink)
}

func single(n int) *gate.Reply {
	return &gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{make([]byte, n)}}
}

func TestMetricsGolden(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewPedanticRegistry()
	clk := &fakeClock{t: time.Unix(1700000000, 0), step: 125 * time.Millisecond}
	opts := []Option{withClock(clk.now), WithMethods("Svc/echo", "Svc/items", "Svc/blob")}

	cm, err := NewClientMetrics(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := NewServerMetrics(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := NewBrokerMetrics(reg, WithMaxServices(2))
	if err != nil {
		t.Fatal(err)
	}
	src := &stubStats{s: broker.Stats{
		Services: []broker.ServiceStats{
			{Name: "Svc", Workers: map[string]int{"idle": 1, "busy": 2}, Capacity: 30, InFlight: 4, Queued: 3, OldestQueue: 1500 * time.Millisecond},
			{Name: "Zeta", Workers: map[string]int{"full": 1}, Capacity: 1, InFlight: 1},
			{Name: "extra1", Workers: map[string]int{"idle": 1}, Capacity: 2, Queued: 1, OldestQueue: 250 * time.Millisecond},
			{Name: "extra2", Workers: map[string]int{"busy": 1}, Capacity: 2, Queued: 2, OldestQueue: 500 * time.Millisecond},
		},
		InFlight: 5, Workers: 6, Requests: 11, Buffered: 3, BufferedBytes: 3000, MaxClientBuffered: 8192,
		HeartbeatsSent: 40, HeartbeatsReceived: 38, ClientKeepalives: 7,
		Outcomes:    map[string]uint64{"dispatched": 100, "expired": 2, "rejected_full": 1, "no_service": 3, "cancelled": 1, "worker_lost": 1},
		Expirations: map[string]uint64{"heartbeat": 1, "disconnect": 2},
		Drops:       map[string]uint64{"frontend/header": 4, "backend/unknown_worker": 1},
	}}
	if err := reg.Register(NewBrokerCollector(src, WithMaxServices(2))); err != nil {
		t.Fatal(err)
	}

	cmw, smw := cm.Middleware(), sm.Middleware()
	body := [][]byte{make([]byte, 10), make([]byte, 20), make([]byte, 30)}
	// Client: two OK calls, a remote exception, a timeout, an unknown method.
	call(t, ctx, cmw, gate.RoleClient, "Svc", "echo", body, []*gate.Reply{single(100)}, nil)
	call(t, ctx, cmw, gate.RoleClient, "Svc", "echo", body, []*gate.Reply{single(5000)}, nil)
	call(t, ctx, cmw, gate.RoleClient, "Svc", "echo", body, []*gate.Reply{{Kind: gate.ReplySingle, Err: gate.Errorf(gate.InvalidArgument, "bad"), Body: [][]byte{make([]byte, 50)}}}, nil)
	call(t, ctx, cmw, gate.RoleClient, "Svc", "echo", body, nil, gate.ErrTimeout)
	call(t, ctx, cmw, gate.RoleClient, "Other", "x", body, []*gate.Reply{single(1)}, nil)
	// Worker: a stream of 3 items, a huge reply of 2 chunks, an error.
	items := []*gate.Reply{
		{Kind: gate.ReplyStreamItem, Body: [][]byte{make([]byte, 10)}},
		{Kind: gate.ReplyStreamItem, Body: [][]byte{make([]byte, 10)}},
		{Kind: gate.ReplyStreamItem, Body: [][]byte{make([]byte, 10)}},
		{Kind: gate.ReplyStreamEnd, Body: [][]byte{make([]byte, 1)}},
	}
	call(t, ctx, smw, gate.RoleWorker, "Svc", "items", body, items, nil)
	huge := []*gate.Reply{
		{Kind: gate.ReplyHugeChunk, Value: make([]byte, 4096), Body: [][]byte{make([]byte, 1000)}},
		{Kind: gate.ReplyHugeChunk, Value: make([]byte, 4096), Body: [][]byte{make([]byte, 1000)}},
		{Kind: gate.ReplyHugeEnd, Body: [][]byte{make([]byte, 1)}},
	}
	call(t, ctx, smw, gate.RoleWorker, "Svc", "blob", body, huge, nil)
	call(t, ctx, smw, gate.RoleWorker, "Svc", "echo", body, nil, gate.Errorf(gate.Internal, "boom"))
	sm.SetExecutorQueueDepth("Svc", "pool", 3)
	sm.AddHugeRawBytes("Svc", "blob", 8)
	// Broker hooks; service "c" is beyond WithMaxServices(2).
	bm.OnDispatch("Svc", 20*time.Millisecond)
	bm.OnDispatch("Zeta", 2*time.Second)
	bm.OnDispatch("c", 0)
	bm.OnFinish("Svc", broker.OutcomeOK, 50*time.Millisecond)
	bm.OnFinish("Svc", broker.OutcomeExpired, 30*time.Second)
	bm.OnFinish("Zeta", "bogus", time.Second)

	golden := filepath.Join("testdata", "metrics.golden")
	var names []string
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if *update {
		var sb strings.Builder
		for _, mf := range mfs {
			if _, err := expfmtWrite(&sb, mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f, names...); err != nil {
		t.Errorf("exposition differs from %s (run with -update to accept):\n%v", golden, err)
	}
	// GatherAndCompare only compares the names gathered: a metric that
	// is no longer exported must still fail the test.
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(want)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" && !slices.Contains(names, f[2]) {
			t.Errorf("%s is in %s but no longer exported", f[2], golden)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestMetricsExemplar(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewPedanticRegistry()
	cm, err := NewClientMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sampled := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	unsampled := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	call(t, sampled, cm.Middleware(), gate.RoleClient, "S", "m", nil, []*gate.Reply{single(1)}, nil)
	call(t, unsampled, cm.Middleware(), gate.RoleClient, "S", "n", nil, []*gate.Reply{single(1)}, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, mf := range mfs {
		if mf.GetName() != "rpc_client_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			method := labelValue(m, labelMethod)
			for _, b := range m.GetHistogram().GetBucket() {
				if ex := b.GetExemplar(); ex != nil {
					found[method] = labelValueOf(ex.GetLabel(), "trace_id")
				}
			}
		}
	}
	if found["S/m"] != tid.String() {
		t.Errorf("exemplar of S/m = %q, want trace id %s", found["S/m"], tid)
	}
	if _, ok := found["S/n"]; ok {
		t.Errorf("unsampled call has an exemplar")
	}
}

// TestMetricsExemplarInterval: a bucket takes at most one exemplar per
// ExemplarInterval; other buckets are not held back by it.
func TestMetricsExemplarInterval(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewPedanticRegistry()
	// Each call reads the clock twice (start, end); times holds the
	// readings in order.
	base := time.Unix(1700000000, 0)
	var times []time.Time
	callAt := func(end, dur time.Duration) {
		times = append(times, base.Add(end-dur), base.Add(end))
	}
	fast, slow := 2*time.Millisecond, 3*time.Second
	callAt(time.Second, fast)                  // #1 fast: exemplar
	callAt(1100*time.Millisecond, fast)        // #2 fast: too soon
	callAt(1200*time.Millisecond, slow)        // #3 slow: other bucket, exemplar
	callAt(time.Second+ExemplarInterval, fast) // #4 fast: due again
	callAt(time.Second+ExemplarInterval, slow) // #5 slow: too soon
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := times[0]
		times = times[1:]
		return now
	}
	cm, err := NewClientMetrics(reg, withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	exemplars := func() map[float64]string { // bucket bound → trace id
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[float64]string{}
		for _, mf := range mfs {
			if mf.GetName() != "rpc_client_call_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, b := range m.GetHistogram().GetBucket() {
					if ex := b.GetExemplar(); ex != nil {
						got[b.GetUpperBound()] = labelValueOf(ex.GetLabel(), "trace_id")
					}
				}
			}
		}
		return got
	}
	tids := make([]string, 6)
	for i := 1; i <= 5; i++ {
		var tid trace.TraceID
		tid[15] = byte(i)
		tids[i] = tid.String()
		sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
		call(t, sctx, cm.Middleware(), gate.RoleClient, "S", "m", nil, []*gate.Reply{single(1)}, nil)
		got := exemplars()
		var want []string // trace ids of the fast and slow buckets
		switch i {
		case 1, 2:
			want = []string{tids[1]}
		case 3:
			want = []string{tids[1], tids[3]}
		case 4, 5:
			want = []string{tids[4], tids[3]}
		}
		var have []string
		for _, b := range DefaultBuckets {
			if id, ok := got[b]; ok {
				have = append(have, id)
			}
		}
		if id, ok := got[math.Inf(1)]; ok {
			have = append(have, id)
		}
		if !slices.Equal(have, want) {
			t.Fatalf("after call %d: exemplars (by bucket) = %v, want %v", i, have, want)
		}
	}
}

func TestMethodLabelBound(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewPedanticRegistry()
	cm, err := NewClientMetrics(reg, WithMaxMethods(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c", "d", "a"} {
		call(t, ctx, cm.Middleware(), gate.RoleClient, "S", m, nil, nil, nil)
	}
	call(t, ctx, cm.Middleware(), gate.RoleClient, "", "", nil, nil, nil)
	want := map[string]uint64{"S/a": 2, "S/b": 1, OtherMethod: 3}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "rpc_client_call_duration_seconds" {
			continue
		}
		if len(mf.GetMetric()) != len(want) {
			t.Errorf("got %d series, want %d", len(mf.GetMetric()), len(want))
		}
		for _, m := range mf.GetMetric() {
			if got := m.GetHistogram().GetSampleCount(); got != want[labelValue(m, labelMethod)] {
				t.Errorf("count{%s} = %d, want %d", labelValue(m, labelMethod), got, want[labelValue(m, labelMethod)])
			}
		}
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(BuildInfo("broker", "v1.2.3"))
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("Gather = %v, %v", mfs, err)
	}
	m := mfs[0].GetMetric()[0]
	if m.GetGauge().GetValue() != 1 || labelValue(m, "role") != "broker" || labelValue(m, "version") != "v1.2.3" ||
		!strings.HasPrefix(labelValue(m, "goversion"), "go") || strings.Count(labelValue(m, "libzmq_version"), ".") != 2 {
		t.Errorf("gaterpc_build_info = %v", m)
	}
	if problems, _ := testutil.GatherAndLint(reg); len(problems) > 0 {
		t.Errorf("lint: %v", problems)
	}
}

func TestRegisterTwiceFails(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := NewServerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServerMetrics(reg); err == nil {
		t.Fatal("second NewServerMetrics on one registry succeeded, want AlreadyRegisteredError")
	}
	if _, err := NewClientMetrics(nil); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}
}

func labelValue(m *dto.Metric, name string) string { return labelValueOf(m.GetLabel(), name) }

func labelValueOf(ls []*dto.LabelPair, name string) string {
	for _, l := range ls {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestMetricsConcurrentSeries: calls to methods seen for the first time
// on several goroutines at once (the series maps are copied on write)
// are each counted once, under their method or, past WithMaxMethods,
// under _OTHER, and the worker's inflight gauges return to 0.
func TestMetricsConcurrentSeries(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewPedanticRegistry()
	cm, err := NewClientMetrics(reg, WithMaxMethods(8))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := NewServerMetrics(reg, WithMaxMethods(8), WithMaxServices(4))
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls, methods = 8, 50, 12
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				m := "m" + string(rune('a'+(g+i)%methods))
				svc := "S" + string(rune('a'+(g+i)%6))
				if err := call(t, ctx, cm.Middleware(), gate.RoleClient, svc, m, nil, []*gate.Reply{single(1)}, nil); err != nil {
					t.Error(err)
				}
				if err := call(t, ctx, sm.Middleware(), gate.RoleWorker, svc, m, nil, []*gate.Reply{single(1)}, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "rpc_client_call_duration_seconds", "rpc_server_call_duration_seconds":
			var total uint64
			labels := map[string]bool{}
			for _, m := range mf.GetMetric() {
				total += m.GetHistogram().GetSampleCount()
				labels[labelValue(m, labelMethod)] = true
			}
			if total != goroutines*calls {
				t.Errorf("%s counted %d calls, want %d", mf.GetName(), total, goroutines*calls)
			}
			if len(labels) > 9 || !labels[OtherMethod] {
				t.Errorf("%s methods %v: want at most 8 and _OTHER", mf.GetName(), labels)
			}
		case "gaterpc_worker_inflight_requests":
			for _, m := range mf.GetMetric() {
				if v := m.GetGauge().GetValue(); v != 0 {
					t.Errorf("inflight{%s} = %v after every call returned", labelValue(m, labelService), v)
				}
			}
		}
	}
}
