package setup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// receiver is an in-process OTLP trace collector.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
	got  chan struct{}
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) spans() map[string]map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]string{} // span name → resource attrs
	for _, req := range r.reqs {
		for _, rs := range req.GetResourceSpans() {
			res := attrs(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out[s.GetName()] = res
				}
			}
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	return m
}

func startGRPCReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{got: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, r)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r, ln.Addr().String()
}

func clearOTELEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_INSECURE"} {
		t.Setenv(k, "")
	}
}

// exportToGRPCReceiver starts a receiver and points the OTEL_* environment
// at it over insecure gRPC.
func exportToGRPCReceiver(t *testing.T) *receiver {
	t.Helper()
	rcv, addr := startGRPCReceiver(t)
	clearOTELEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	return rcv
}

func TestOTLPExportGRPC(t *testing.T) {
	ctx := testCtx(t)
	rcv := exportToGRPCReceiver(t)

	tel, err := New(ctx, Config{Role: "worker", InstanceID: "w-1", LogWriter: io.Discard, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := tel.Middleware()
	if err != nil {
		t.Fatal(err)
	}
	req := &gate.Request{Service: "Svc", Method: "echo"}
	gatehook.SetRole(req, gate.RoleWorker)
	h := mw(gate.HandlerFunc(func(context.Context, *gate.Request, gate.ReplyWriter) error { return nil }))
	if err := h.ServeRPC(ctx, req, gate.ReplyWriterFunc(func(context.Context, *gate.Reply) error { return nil })); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(ctx); err != nil { // flushes the batcher
		t.Fatalf("Shutdown: %v", err)
	}
	spans := rcv.spans()
	res, ok := spans["Svc/echo"]
	if !ok {
		t.Fatalf("receiver got spans %v, want Svc/echo", spans)
	}
	if res["service.name"] != "gaterpc-worker" || res["service.instance.id"] != "w-1" {
		t.Errorf("resource = %v", res)
	}
}

func TestBrokerObserverExports(t *testing.T) {
	ctx := testCtx(t)
	rcv := exportToGRPCReceiver(t)

	tel, err := New(ctx, Config{Role: "broker", LogWriter: io.Discard, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	obs := tel.BrokerObserver()
	if obs == nil {
		t.Fatal("BrokerObserver = nil with an exporter configured")
	}
	req := &gate.Request{Service: "Svc", Method: "echo", Body: [][]byte{{0xa4, 'e', 'c', 'h', 'o'}}}
	gatehook.SetRole(req, gate.RoleBroker)
	now := time.Now()
	ro := obs.Observe(req, now)
	d := &broker.Dispatch{Service: "Svc", Enqueued: now, Assigned: now.Add(time.Millisecond), Metadata: map[string]string{}}
	ro.Dispatch(d)
	if d.Metadata["traceparent"] == "" {
		t.Errorf("dispatch metadata %v: no traceparent for the worker", d.Metadata)
	}
	ro.Reply(&gate.Reply{Kind: gate.ReplySingle, Body: [][]byte{{0x80}}})
	ro.Finish(now.Add(2*time.Millisecond), broker.OutcomeOK, nil)
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	spans := rcv.spans()
	for _, name := range []string{"Svc/echo", "queue wait", "dispatch"} {
		if res, ok := spans[name]; !ok || res["service.name"] != "gaterpc-broker" {
			t.Errorf("span %q: resource %v (found %v); spans %v", name, res, ok, spans)
		}
	}
}

func TestBrokerObserverNilWhenIdle(t *testing.T) {
	ctx := testCtx(t)
	clearOTELEnv(t)
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		tel, err := New(ctx, Config{Role: "broker", LogLevel: level, LogWriter: io.Discard, NoGlobals: true})
		if err != nil {
			t.Fatal(err)
		}
		if obs := tel.BrokerObserver(); (obs != nil) != (level == slog.LevelDebug) {
			t.Errorf("log level %v, no exporter: BrokerObserver = %v; want one only to log at Debug", level, obs)
		}
		_ = tel.Shutdown(ctx)
	}
}

func TestOTLPExportHTTP(t *testing.T) {
	ctx := testCtx(t)
	var got atomic.Int32
	var names sync.Map
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names.Store(s.GetName(), attrs(rs.GetResource().GetAttributes())["service.name"])
				}
			}
		}
		got.Add(1)
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Shutdown(ctx)
		<-done
	}()

	clearOTELEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"+ln.Addr().String()+"/v1/traces")
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	tel, err := New(ctx, Config{Role: "client", LogWriter: io.Discard, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("test").Start(ctx, "hello")
	span.End()
	// The span processor's drops are a metric of the registry.
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || (mf.GetName() == "gaterpc_trace_spans_dropped_total" && mf.GetMetric()[0].GetCounter().GetValue() == 0)
	}
	if !found {
		t.Errorf("gaterpc_trace_spans_dropped_total 0 not gathered")
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if v, ok := names.Load("hello"); !ok || v != "from-env" {
		t.Errorf("span hello: service.name = %v (found %v); want from-env", v, ok)
	}
}

func TestNoExporterIsNoop(t *testing.T) {
	ctx := testCtx(t)
	clearOTELEnv(t)
	tel, err := New(ctx, Config{LogWriter: io.Discard, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	_, span := tel.TracerProvider.Tracer("x").Start(ctx, "s")
	if span.IsRecording() {
		t.Errorf("span is recording without an exporter")
	}
	span.End()
}

func TestBadEnv(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	if _, err := New(testCtx(t), Config{LogWriter: io.Discard, NoGlobals: true}); !errors.Is(err, ErrConfig) {
		t.Errorf("New with OTEL_TRACES_EXPORTER=zipkin: %v, want ErrConfig", err)
	}
	clearOTELEnv(t)
	if _, err := New(testCtx(t), Config{LogFormat: "xml", LogWriter: io.Discard, NoGlobals: true}); !errors.Is(err, ErrConfig) {
		t.Errorf("New with LogFormat xml: %v, want ErrConfig", err)
	}
}

func get(t *testing.T, ctx context.Context, url string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	ctx := testCtx(t)
	clearOTELEnv(t)
	var notReady atomic.Bool
	notReady.Store(true)
	var logs bytes.Buffer
	var logMu sync.Mutex
	tel, err := New(ctx, Config{
		Role: "broker", Version: "v9.9.9", MetricsAddr: "127.0.0.1:0", LogFormat: "json", LogLevel: slog.LevelDebug,
		LogWriter: writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }),
		Ready: func(context.Context) error {
			if notReady.Load() {
				return errors.New("backend not bound")
			}
			return nil
		},
		NoGlobals: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + tel.MetricsAddr()
	if code, _ := get(t, ctx, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, ctx, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "backend not bound") {
		t.Errorf("/readyz = %d %q, want 503", code, body)
	}
	notReady.Store(false)
	if code, _ := get(t, ctx, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", code)
	}
	bm, err := tel.BrokerMetrics()
	if err != nil {
		t.Fatal(err)
	}
	bm.Event(&broker.Event{Kind: broker.EventDispatched, Service: "Svc"})
	code, body := get(t, ctx, base+"/metrics")
	for _, want := range []string{`gaterpc_build_info{goversion="go`, `role="broker"`, `version="v9.9.9"`, "go_goroutines", "gaterpc_log_records_dropped_total 0", `gaterpc_broker_queue_wait_seconds_count{service="Svc"} 1`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d, missing %q", code, want)
		}
	}
	_, om := get(t, ctx, base+"/metrics", "Accept", "application/openmetrics-text; version=1.0.0")
	if !strings.HasSuffix(strings.TrimSpace(om), "# EOF") {
		t.Errorf("OpenMetrics not negotiated: %.100q", om)
	}
	tel.Logger.Info("hello", "k", 1)
	// A per-request record (the broker observer logs at Debug) carries
	// gaterpc.role once, not once from the process logger and once more.
	req := &gate.Request{Service: "Svc", Method: "m"}
	gatehook.SetRole(req, gate.RoleBroker)
	if ro := tel.BrokerObserver().Observe(req, time.Now()); ro != nil {
		ro.Finish(time.Now(), broker.OutcomeOK, nil)
	} else {
		t.Error("BrokerObserver observes nothing at Debug")
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `"msg":"hello"`) || !strings.Contains(logs.String(), `"gaterpc.role":"broker"`) {
		t.Errorf("logs = %q", logs.String())
	}
	rpc := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `"rpc.method"`) {
			rpc++
			if n := strings.Count(line, `"gaterpc.role"`); n != 1 {
				t.Errorf("per-request record has gaterpc.role %d times: %s", n, line)
			}
		}
	}
	if rpc == 0 {
		t.Errorf("no per-request record in %q", logs.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("server still up after Shutdown")
	}
}

// TestPprof: the profiles are served only when asked for.
func TestPprof(t *testing.T) {
	ctx := testCtx(t)
	clearOTELEnv(t)
	for _, on := range []bool{false, true} {
		tel, err := New(ctx, Config{Role: "worker", MetricsAddr: "127.0.0.1:0", LogWriter: io.Discard, Pprof: on, NoGlobals: true})
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + tel.MetricsAddr()
		code, body := get(t, ctx, base+"/debug/pprof/goroutine?debug=1")
		if on && (code != http.StatusOK || !strings.Contains(body, "goroutine profile:")) {
			t.Errorf("Pprof on: goroutine profile = %d %.80q", code, body)
		}
		if !on && code != http.StatusNotFound {
			t.Errorf("Pprof off: /debug/pprof/goroutine = %d, want 404", code)
		}
		if err := tel.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestParentBasedEnv: the samplers that never sample a child of an
// unsampled parent, and only they, let the kit skip the SDK for such
// children.
func TestParentBasedEnv(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "parentbased_always_on": true, " ParentBased_TraceIDRatio ": true,
		"parentbased_always_off": true, "always_off": true,
		"always_on": false, "traceidratio": false, "jaeger_remote": false, "bogus": false,
	} {
		t.Setenv("OTEL_TRACES_SAMPLER", v)
		if got := parentBasedEnv(); got != want {
			t.Errorf("OTEL_TRACES_SAMPLER=%q: parentBasedEnv() = %v, want %v", v, got, want)
		}
	}
}
