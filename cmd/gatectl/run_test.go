package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/demo"
	"github.com/gaterpc/gate/internal/gatetest"
)

const (
	testTimeout = 10 * time.Second
	testHB      = 500 * time.Millisecond
)

func TestMain(m *testing.M) {
	if gate.RunChildIfRequested() { // process-pool child of TestDemo
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// startDemo starts a broker on tcp://127.0.0.1 (system ports) and one
// demo worker; it returns the frontend endpoint.
func startDemo(t *testing.T) string {
	t.Helper()
	h := gatetest.StartBrokerOn(t, gatetest.TCP, broker.WithHeartbeat(testHB))
	svc, err := demo.NewService("demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWorker(h.Backend, gate.WithHeartbeat(testHB), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)
	// Wait until the worker is registered: a call succeeds.
	deadline := time.Now().Add(testTimeout)
	for {
		_, _, err := gatectl(t, h.Frontend, "-timeout", "1s", "call", "demo.echo")
		if err == nil {
			return h.Frontend
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo worker never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gatectl runs run with -broker frontend and the given arguments.
func gatectl(t *testing.T, frontend string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	env := map[string]string{"GATE_BROKER": frontend, "GATE_HEARTBEAT": testHB.String()}
	var out, errb bytes.Buffer
	err = run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), err
}

func exitCode(err error) int { return cli.ExitCode("gatectl", err, io.Discard) }

// printed is what main prints on stderr for err.
func printed(err error) string {
	var b bytes.Buffer
	cli.ExitCode("gatectl", err, &b)
	return b.String()
}

func TestCall(t *testing.T) {
	front := startDemo(t)
	// demo.blob's bytes are the first ones of its generator.
	blob3 := make([]byte, 3)
	_, _ = demo.NewBlobSource().Read(blob3)
	blobJSON := `{"$bytes":"` + base64.StdEncoding.EncodeToString(blob3) + `"}`
	for _, tt := range []struct {
		name     string
		args     []string
		want     string // JSON, compared after normalising
		code     int
		stderrRE string
	}{
		{name: "json args and kw", args: []string{"call", "demo.echo", "hello", "42", "-1.5", `{"x":[1,true,null]}`, "-kw", "name=gate", "-kw=n=7"},
			want: `{"args":["hello",42,-1.5,{"x":[1,true,null]}],"kwargs":{"name":"gate","n":7}}`},
		{name: "quoted JSON string and bytes", args: []string{"call", "demo.echo", `"42"`, `{"$bytes":"AAEC"}`},
			want: `{"args":["42",{"$bytes":"AAEC"}],"kwargs":{}}`},
		{name: "flags after --", args: []string{"call", "demo.echo", "--", "-kw"},
			want: `{"args":["-kw"],"kwargs":{}}`},
		{name: "global flag after command", args: []string{"call", "-json", "demo.sleep", "0"}, want: `0`},
		{name: "huge", args: []string{"call", "demo.huge", "3"}, want: blobJSON},
		{name: "blob is huge", args: []string{"call", "demo.blob", "3"}, want: blobJSON},
		{name: "exception", args: []string{"call", "demo.fail", "boom"}, code: 1,
			stderrRE: `^ValueError: ValueError\('boom'\)\n$`},
		{name: "exception verbose", args: []string{"-v", "call", "demo.fail", "boom"}, code: 1,
			stderrRE: `ValueError: ValueError\('boom'\)\n\s+File ".*demo.go", line \d+`},
		{name: "exception json", args: []string{"-json", "call", "demo.fail", "boom"}, code: 1,
			stderrRE: `^\{"error":\{"class":"ValueError","code":"[A-Z_]+","message":"ValueError\('boom'\)","traceback":".*"\}\}\n$`},
		{name: "unknown method", args: []string{"call", "demo.nope"}, code: 1, stderrRE: `AttributeError`},
		{name: "type error", args: []string{"call", "demo.count", "many"}, code: 1, stderrRE: `TypeError`},
		{name: "no method", args: []string{"call"}, code: 2},
		{name: "-d array", args: []string{"call", "demo.echo", "-d", `[1, "two", {"$bytes":"AAE="}]`},
			want: `{"args":[1,"two",{"$bytes":"AAE="}],"kwargs":{}}`},
		{name: "-d object, words appended, -kw wins", args: []string{"call", "demo.echo", "-d", `{"args":[1],"kwargs":{"a":1,"b":2}}`, "x", "-kw", "b=3"},
			want: `{"args":[1,"x"],"kwargs":{"a":1,"b":3}}`},
		{name: "-d bad shape", args: []string{"call", "demo.echo", "-d", `{"x":1}`}, code: 2, stderrRE: `unexpected key "x"`},
		{name: "-d not JSON", args: []string{"call", "demo.echo", "-d", `[1,`}, code: 2, stderrRE: `-d: not JSON`},
		{name: "-d missing file", args: []string{"call", "demo.echo", "-d", "@/nonexistent/args.json"}, code: 2, stderrRE: `no such file`},
		{name: "bad kw", args: []string{"call", "demo.echo", "-kw", "novalue"}, code: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, err := gatectl(t, front, tt.args...)
			errs += printed(err)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("gatectl %q: exit %d (err %v), want %d\nstderr: %s", tt.args, got, err, tt.code, errs)
			}
			if tt.want != "" {
				var got, want any
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("gatectl %q printed %q: %v", tt.args, out, err)
				}
				_ = json.Unmarshal([]byte(tt.want), &want)
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if !bytes.Equal(g, w) {
					t.Errorf("gatectl %q = %s, want %s", tt.args, g, w)
				}
			}
			if tt.stderrRE != "" && !regexp.MustCompile(tt.stderrRE).MatchString(errs) {
				t.Errorf("gatectl %q stderr = %q, want match %q", tt.args, errs, tt.stderrRE)
			}
		})
	}
}

func TestStream(t *testing.T) {
	front := startDemo(t)
	out, errs, err := gatectl(t, front, "stream", "demo.count", "3")
	if err != nil || out != "0\n1\n2\n" {
		t.Fatalf("stream demo.count 3 = %q, %v (stderr %q), want 0 1 2 lines", out, err, errs)
	}
	out, _, err = gatectl(t, front, "stream", "demo.echo", "-kw", "a=1")
	if err != nil || out != `{"args":[],"kwargs":{"a":1}}`+"\n" {
		t.Fatalf("stream demo.echo (unary) = %q, %v", out, err)
	}
	_, errs, err = gatectl(t, front, "stream", "demo.count", "-1")
	if exitCode(err) != 1 || !strings.Contains(errs, "count(n)") {
		t.Fatalf("stream demo.count -1: err %v, stderr %q; want exit 1 with the exception", err, errs)
	}
	// -timeout bounds the whole stream (and the call).
	for _, cmd := range []string{"stream", "call"} {
		out, errs, err = gatectl(t, front, "-timeout", "200ms", cmd, "demo.sleep", "5")
		errs += printed(err)
		if exitCode(err) != 1 || out != "" || !strings.Contains(errs, "demo.sleep: no reply within -timeout 200ms from the broker at "+front) {
			t.Fatalf("-timeout 200ms %s demo.sleep 5 = %q, exit %d, stderr %q; want exit 1, no reply within -timeout", cmd, out, exitCode(err), errs)
		}
	}
}

// TestDataAndOutput: -d @FILE and -d - (stdin) carry the arguments, -o
// writes bytes raw and other results as JSON.
func TestDataAndOutput(t *testing.T) {
	front := startDemo(t)
	dir := t.TempDir()
	big := strings.Repeat("x", 300<<10) // more than a shell passes in one argument
	argsFile := filepath.Join(dir, "args.json")
	if err := os.WriteFile(argsFile, []byte(`{"args": ["`+big+`"], "kwargs": {"k": [1, 2]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, err := gatectl(t, front, "-json", "call", "demo.echo", "-d", "@"+argsFile)
	var echo struct {
		Args   []string         `json:"args"`
		Kwargs map[string][]int `json:"kwargs"`
	}
	if err != nil || json.Unmarshal([]byte(out), &echo) != nil || len(echo.Args) != 1 || echo.Args[0] != big || len(echo.Kwargs["k"]) != 2 {
		t.Fatalf("call -d @file: %v, stderr %q, stdout %.200q", err, errs, out)
	}

	saved := stdin
	t.Cleanup(func() { stdin = saved })
	stdin = strings.NewReader(`[3]`)
	out, errs, err = gatectl(t, front, "stream", "demo.count", "-d", "-")
	if err != nil || out != "0\n1\n2\n" {
		t.Fatalf("stream -d - = %q, %v, %q", out, err, errs)
	}

	// Bytes go to -o raw: demo.huge 100000 is 100000 pseudo-random bytes.
	raw := filepath.Join(dir, "huge.bin")
	out, errs, err = gatectl(t, front, "call", "demo.huge", "100000", "-o", raw)
	if err != nil || out != "" {
		t.Fatalf("call -o: %q, %v, %q", out, err, errs)
	}
	if b, err := os.ReadFile(raw); err != nil || len(b) != 100000 {
		t.Fatalf("-o file holds %d bytes (%v), want 100000", len(b), err)
	}
	// Other results as JSON lines; stream items appended in order.
	js := filepath.Join(dir, "items.json")
	if _, errs, err = gatectl(t, front, "stream", "demo.count", "3", "-o", js); err != nil {
		t.Fatalf("stream -o: %v %q", err, errs)
	}
	if b, err := os.ReadFile(js); err != nil || string(b) != "0\n1\n2\n" {
		t.Fatalf("stream -o file = %q, %v", b, err)
	}
}

// TestNoBroker: with nothing at -broker, every command that talks to the
// broker fails at once (no wait for -timeout) saying so.
func TestNoBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "tcp://" + ln.Addr().String()
	ln.Close()
	// A listener that accepts and says nothing: not a ZeroMQ peer.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	var conns sync.WaitGroup
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	defer conns.Wait()
	defer mute.Close()
	for _, tt := range []struct {
		broker string
		args   []string
		want   string
	}{
		{closed, []string{"call", "demo.echo"}, "no broker answered at " + closed + ": connection refused"},
		{closed, []string{"-timeout", "2s", "stream", "demo.count", "3"}, "no broker answered at " + closed},
		{closed, []string{"services"}, "no broker answered at " + closed},
		{closed, []string{"bench", "-duration", "1s"}, "no broker answered at " + closed},
		{"ipc://" + filepath.Join(t.TempDir(), "none"), []string{"info"}, "no such socket file"},
		{"tcp://" + mute.Addr().String(), []string{"-timeout", "300ms", "call", "demo.echo"}, "sent no ZMTP greeting within 300ms"},
	} {
		_, errs, err := gatectl(t, tt.broker, tt.args...)
		errs += printed(err)
		if exitCode(err) != 1 || !strings.Contains(errs, tt.want) {
			t.Errorf("gatectl -broker %s %q: exit %d, stderr %q; want exit 1 mentioning %q", tt.broker, tt.args, exitCode(err), errs, tt.want)
		}
	}
}

func TestServicesInfoInterfaces(t *testing.T) {
	front := startDemo(t)
	out, _, err := gatectl(t, front, "services")
	if err != nil || !regexp.MustCompile(`(?m)^demo\s+1\s+0\s+.*gate demo service$`).MatchString(out) {
		t.Fatalf("services = %q, %v", out, err)
	}
	out, _, err = gatectl(t, front, "-json", "services")
	var rows []serviceRow
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) < 1 || rows[0].Name != "demo" {
		t.Fatalf("services -json = %q, %v", out, err)
	}
	out, _, err = gatectl(t, front, "info", "-json")
	var info struct {
		ID       string   `json:"id"`
		Services []string `json:"services"`
	}
	if err != nil || json.Unmarshal([]byte(out), &info) != nil || len(info.ID) != 32 || len(info.Services) != 1 || info.Services[0] != "demo" {
		t.Fatalf("info -json = %q, %v", out, err)
	}
	out, _, err = gatectl(t, front, "interfaces", "demo")
	for _, m := range []string{"echo", "fail", "count", "huge", "blob", "sleep", "cpu"} {
		if err != nil || !regexp.MustCompile(`(?m)^`+m+`\s`).MatchString(out) {
			t.Fatalf("interfaces demo = %q, %v; want a row for %s", out, err, m)
		}
	}
	out, _, err = gatectl(t, front, "interfaces", "Gate")
	// Answered by the broker (Gate.get_interfaces): service_stats is only
	// in its list, not in gatectl's table for 0.2.12 brokers.
	if err != nil || !regexp.MustCompile(`(?m)^keepalive\s`).MatchString(out) || !regexp.MustCompile(`(?m)^get_services\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^service_stats\s+\(\*names: str\)`).MatchString(out) {
		t.Fatalf("interfaces Gate = %q, %v; want the broker's functions", out, err)
	}
	if _, _, err := gatectl(t, front, "interfaces"); exitCode(err) != 2 {
		t.Fatalf("interfaces without a service: %v, want a usage error", err)
	}
}

// TestServicesStats: `services` shows per service the workers, capacity
// and the calls and errors that went through the broker; `services NAME`
// shows the worker (routing id, protocol, capacity, last seen).
func TestServicesStats(t *testing.T) {
	front := startDemo(t)
	for range 3 {
		if _, _, err := gatectl(t, front, "call", "demo.echo", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := gatectl(t, front, "call", "demo.fail", "boom"); exitCode(err) != 1 {
		t.Fatalf("call demo.fail: %v, want a remote error", err)
	}
	out, _, err := gatectl(t, front, "services")
	if err != nil || !regexp.MustCompile(`(?m)^SERVICE\s+WORKERS\s+STALLED\s+CAPACITY\s+IN_FLIGHT\s+QUEUED\s+OLDEST\s+CALLS\s+ERRORS\s+DESCRIPTION$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^demo\s+1\s+0\s+\d+\s+0\s+0\s+0s\s+\d+\s+[1-9]\d*\s+gate demo service$`).MatchString(out) {
		t.Fatalf("services = %q, %v; want a row for demo with its errors", out, err)
	}
	t.Logf("services:\n%s", out)
	out, _, err = gatectl(t, front, "-json", "services")
	var rows []serviceRow
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
		t.Fatalf("services -json = %q, %v", out, err)
	}
	d, g := rows[0], rows[1]
	if d.Name != "demo" || len(d.Workers) != 1 || d.Capacity < 1 || d.Calls < 4 || d.Errors < 1 || d.Outcomes["error"] < 1 || d.Outcomes["ok"] < 3 {
		t.Fatalf("services -json demo = %+v, want 1 worker, >= 4 calls, >= 1 error", d)
	}
	if g.Name != "Gate" || !g.Internal {
		t.Fatalf("services -json last row = %+v, want the internal service", g)
	}
	w := d.Workers[0]
	if len(w.ID) == 0 || !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(w.ID) || !strings.HasPrefix(w.Protocol, "gaterpc/") || w.Stalled || w.LastSeenS < 0 {
		t.Fatalf("demo worker = %+v, want a hex id, a gaterpc protocol, not stalled", w)
	}
	out, _, err = gatectl(t, front, "services", "demo")
	if err != nil || !regexp.MustCompile(`(?m)^workers\s+1 \(0 stalled\), capacity \d+$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+w.ID+`\s+gaterpc/\d+\s+\d+\s+\d+\s+\S+\s+no\s+-$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^outcomes\s+.*error \d+`).MatchString(out) {
		t.Fatalf("services demo = %q, %v; want the worker row for %s", out, err, w.ID)
	}
	t.Logf("services demo:\n%s", out)
	out, _, err = gatectl(t, front, "services", "demo", "-json")
	var one serviceRow
	if err != nil || json.Unmarshal([]byte(out), &one) != nil || one.Name != "demo" || len(one.Workers) != 1 || one.Workers[0].ID != w.ID {
		t.Fatalf("services demo -json = %q, %v", out, err)
	}
	if _, _, err := gatectl(t, front, "services", "nope"); exitCode(err) != 1 || !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("services nope: %v, want exit 1 wrapping ErrNoService", err)
	}
	if _, _, err := gatectl(t, front, "services", "a", "b"); exitCode(err) != 2 {
		t.Fatalf("services a b: %v, want a usage error", err)
	}
}

func TestBench(t *testing.T) {
	front := startDemo(t)
	pngPath := filepath.Join(t.TempDir(), "h.png")
	out, errs, err := gatectl(t, front, "-json", "bench", "-service", "demo", "-method", "echo",
		"-concurrency", "2", "-duration", "300ms", "-size", "64", "-histogram-png", pngPath)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errs)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench -json printed %q: %v", out, err)
	}
	l := r.Latency
	if r.Calls == 0 || r.Errors != 0 || r.CallsPerS <= 0 || l.Min <= 0 || l.Min > l.P50 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
		t.Fatalf("bench result not sane: %+v", r)
	}
	var n uint64
	for _, b := range r.Histogram {
		n += b.Count
	}
	if n != r.Calls {
		t.Errorf("histogram holds %d calls, want %d", n, r.Calls)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("histogram PNG: %v", err)
	}

	// Text summary, rate-limited, with progress lines.
	out, errs, err = gatectl(t, front, "bench", "-concurrency", "2", "-duration", "1100ms", "-rate", "40", "-progress")
	if err != nil {
		t.Fatalf("bench -rate: %v\n%s", err, errs)
	}
	for _, want := range []string{"bench demo.echo: 2 callers", "calls ", "p50 ", "p99 ", "latency histogram", "■"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench summary lacks %q:\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(`calls\s+(\d+) `).FindStringSubmatch(out); m == nil || len(m[1]) > 2 {
		t.Errorf("bench -rate 40 for 1.1s: want about 44 calls:\n%s", out)
	}
	if !strings.Contains(errs, "[1s/1.1s]") {
		t.Errorf("bench -progress: no progress line on stderr: %q", errs)
	}

	// Failing calls: exit 1 with the error counted.
	out, _, err = gatectl(t, front, "-json", "bench", "-method", "fail", "-concurrency", "1", "-duration", "100ms")
	if exitCode(err) != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Errors == 0 || r.Errors != r.Calls {
		t.Fatalf("bench of fail: %v, %q", err, out)
	}
}

// TestBenchModes: -n, -connections, -warmup, -d, -stream, -csv, the
// p95/p99.9 columns, and a local error that stops bench at once.
func TestBenchModes(t *testing.T) {
	front := startDemo(t)
	csvPath := filepath.Join(t.TempDir(), "runs.csv")

	out, errs, err := gatectl(t, front, "-json", "bench", "-n", "50", "-concurrency", "4", "-connections", "2",
		"-warmup", "100ms", "-d", `{"args": ["x"], "kwargs": {"k": 1}}`, "-csv", csvPath)
	var r benchResult
	if err != nil || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("bench -n 50: %v, %q, %q", err, out, errs)
	}
	l := r.Latency
	if r.Calls != 50 || r.Errors != 0 || r.Connections != 2 || r.Size != -1 || l.P90 > l.P95 || l.P95 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Fatalf("bench -n 50 -connections 2: %+v", r)
	}

	out, errs, err = gatectl(t, front, "-json", "bench", "-method", "count", "-stream", "-n", "20", "-d", "[5]", "-csv", csvPath)
	if err != nil || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("bench -stream: %v, %q, %q", err, out, errs)
	}
	if !r.Stream || r.Calls != 20 || r.Items != 100 || r.ItemsPerS <= 0 {
		t.Fatalf("bench -stream of count(5), 20 streams: %+v, want 100 items", r)
	}
	out, _, err = gatectl(t, front, "bench", "-method", "count", "-stream", "-n", "4", "-d", "[2]")
	for _, want := range []string{"bench demo.count (streams): 4 callers", "items     8 (", "p95 ", "p99.9 "} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("bench -stream summary lacks %q (%v):\n%s", want, err, out)
		}
	}

	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[0], csvHeader) || rows[1][8] != "50" || rows[2][2] != "true" || rows[2][10] != "100" {
		t.Fatalf("-csv file (header and one row per run) = %q, %v", rows, err)
	}

	// A payload the client cannot encode (over GATE_MAX_BIN_LEN): one
	// error, no load.
	out, errs, err = gatectl(t, front, "bench", "-size", strconv.Itoa(gate.DefaultSettings().MaxBinLen+1), "-duration", "5s")
	errs += printed(err)
	if exitCode(err) != 1 || out != "" || !strings.Contains(errs, "no load started") || !strings.Contains(errs, "encode arguments") {
		t.Fatalf("bench of an unencodable payload: exit %d, stdout %q, stderr %q; want exit 1 before any load", exitCode(err), out, errs)
	}
	// An unknown service is a remote error: counted, exit 1.
	out, errs, err = gatectl(t, front, "-json", "bench", "-service", "nope", "-n", "3", "-concurrency", "1")
	if exitCode(err) != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Calls != 3 || r.ErrorKind["UNAVAILABLE"] != 3 {
		t.Fatalf("bench of an unknown service: exit %d, %q, stderr %q; want 3 UNAVAILABLE errors", exitCode(err), out, errs)
	}
}

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr gatetest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-frontend", "tcp://127.0.0.1:0", "-backend", "tcp://127.0.0.1:0",
			"-metrics-addr", "127.0.0.1:0", "-procs", "1", "-rate", "50", "-log-level", "warn"},
			func(string) string { return "" }, &stdout, &stderr)
	}()
	var front, metrics string
	gatetest.WaitFor(t, testTimeout, "demo banner", func() bool {
		select {
		case err := <-done:
			t.Fatalf("demo returned early: %v\n%s", err, stderr.String())
		default:
		}
		m := regexp.MustCompile(`frontend (tcp://\S+)[\s\S]*metrics\s+http://(\S+)/metrics`).FindStringSubmatch(stdout.String())
		if m == nil {
			return false
		}
		front, metrics = m[1], m[2]
		return true
	})
	deadline := time.Now().Add(testTimeout)
	for {
		out, _, err := gatectl(t, front, "-timeout", "1s", "call", "demo.cpu", "1000")
		if err == nil && len(strings.Trim(strings.TrimSpace(out), `"`)) == 64 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call through the demo succeeded: %v %q\n%s", err, out, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, ex := range []string{"services", "call " + `demo.echo hello 42 '{"x":[1,2]}' -kw name=gate`, "stream demo.count 5"} {
		if !strings.Contains(stdout.String(), ex) {
			t.Errorf("banner lacks the example %q:\n%s", ex, stdout.String())
		}
	}
	// The traffic generator feeds every hop's metrics.
	gatetest.WaitFor(t, testTimeout, "metrics of every hop", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, m := range []string{"rpc_client_call_duration_seconds", "rpc_server_call_duration_seconds",
			"gaterpc_broker_requests_queued", `rpc_method="demo/count"`, "gaterpc_worker_stream_messages_total"} {
			if !bytes.Contains(b, []byte(m)) {
				return false
			}
		}
		return true
	})
	http.DefaultClient.CloseIdleConnections()
	if _, _, err := gatectl(t, front, "health", "-addr", metrics, "-path", "/readyz"); err != nil {
		t.Fatalf("health /readyz of the demo: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo = %v\n%s", err, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("demo did not stop after cancel")
	}
	if !strings.Contains(stdout.String(), "shutting down") {
		t.Errorf("no shutdown message:\n%s", stdout.String())
	}
}

func TestHealth(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "nope", http.StatusServiceUnavailable)
		}
	}))
	defer ok.Close()
	addr := strings.TrimPrefix(ok.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		code int
	}{
		{"flag", []string{"health", "-addr", addr}, nil, 0},
		{"env", []string{"health"}, map[string]string{"GATE_METRICS_ADDR": "0.0.0.0:" + port}, 0},
		{"flag beats env", []string{"health", "-addr", addr}, map[string]string{"GATE_METRICS_ADDR": "127.0.0.1:1"}, 0},
		{"not ready", []string{"health", "-addr", addr, "-path", "/readyz"}, nil, 1},
		{"nothing listening", []string{"health", "-addr", "127.0.0.1:1", "-timeout", "1s"}, nil, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out, &errb)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("gatectl %q = exit %d (%v, %s), want %d", tt.args, got, err, errb.String(), tt.code)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		out  string // on stdout; stderr must then be empty
		err  string // on stderr
	}{
		{name: "no command", code: 2, err: "missing command"},
		{name: "unknown command", args: []string{"frob"}, code: 2, err: `unknown command "frob"`},
		{name: "-h", args: []string{"-h"}, out: "Commands:"},
		{name: "help", args: []string{"help"}, out: "Global flags"},
		{name: "help command", args: []string{"help", "call"}, out: "Usage: gatectl call SERVICE.METHOD"},
		{name: "command -h", args: []string{"bench", "-h"}, out: "-connections"},
		{name: "health -h", args: []string{"health", "-h"}, out: "Usage: gatectl health"},
		{name: "version", args: []string{"version"}, out: "gatectl "},
		{name: "--version", args: []string{"--version"}, out: " libzmq "},
		{name: "bad GATE_REPLY_TIMEOUT", args: []string{"services"}, env: map[string]string{"GATE_REPLY_TIMEOUT": "soon"}, code: 2, err: `GATE_REPLY_TIMEOUT="soon"`},
		{name: "bad GATE_HWM", args: []string{"services"}, env: map[string]string{"GATE_HWM": "lots"}, code: 2, err: `GATE_HWM="lots"`},
		{name: "bad broker-side setting", args: []string{"services"}, env: map[string]string{"GATE_TIMEOUT": "-3s"}, code: 2, err: "Timeout -3s: must be positive"},
		{name: "bad flag", args: []string{"call", "-timeout", "x", "demo.echo"}, code: 2, err: "invalid value"},
		{name: "bad bench flag", args: []string{"bench", "-concurrency", "0"}, code: 2, err: "-concurrency 0"},
		{name: "absurd concurrency", args: []string{"bench", "-concurrency", "100000"}, code: 2, err: "want 1..10000"},
		{name: "more connections than callers", args: []string{"bench", "-concurrency", "2", "-connections", "3"}, code: 2, err: "at most -concurrency"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out, &errb)
			if got := cli.ExitCode("gatectl", err, &errb); got != tt.code {
				t.Fatalf("gatectl %q = exit %d (%v), want %d", tt.args, got, err, tt.code)
			}
			if tt.out != "" && (!strings.Contains(out.String(), tt.out) || errb.Len() != 0) {
				t.Errorf("gatectl %q: stdout %q, stderr %q; want everything on stdout, with %q", tt.args, out.String(), errb.String(), tt.out)
			}
			if tt.err != "" && !strings.Contains(errb.String(), tt.err) {
				t.Errorf("gatectl %q: stderr %q, want %q", tt.args, errb.String(), tt.err)
			}
		})
	}
}

// TestTracesClientHop: with OTEL_* pointing at an OTLP/HTTP receiver,
// `gatectl call` exports its CLIENT span "demo/echo" as service gatectl.
func TestTracesClientHop(t *testing.T) {
	front := startDemo(t)
	spans := make(chan string, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.GetResourceSpans() {
			svc := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					select {
					case spans <- svc + " " + s.GetKind().String() + " " + s.GetName():
					default:
					}
				}
			}
		}
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")

	if _, errs, err := gatectl(t, front, "call", "demo.echo", "traced"); err != nil {
		t.Fatalf("call: %v %q", err, errs)
	}
	// gatectl flushed its spans before returning.
	select {
	case got := <-spans:
		if got != "gatectl SPAN_KIND_CLIENT demo/echo" {
			t.Fatalf("exported span %q, want the CLIENT span demo/echo of service gatectl", got)
		}
	default:
		t.Fatal("gatectl call exported no span")
	}
}
