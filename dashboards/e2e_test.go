package dashboards

// The end-to-end test of issue 7: build the real binaries, run a broker, demo
// workers and `gatectl bench` on loopback, let a real Prometheus (Debian
// package prometheus) scrape them every second, then evaluate every dashboard
// query through Prometheus' HTTP API and fail on errors or empty results.
//
// Binary flags assumed (flags mirror GATE_* env vars, which are cleared here):
//
//	gate-broker      -frontend tcp://H:P -backend tcp://H:P -metrics-addr H:P
//	gate-demo-worker -broker tcp://H:P(backend) -service demo -metrics-addr H:P
//	gatectl -broker tcp://H:P(frontend) -timeout D bench -service S -method M -concurrency N -duration D -metrics-addr H:P
//	gatectl -broker ... call SERVICE.METHOD [ARG...]    (exit 1 on remote error)
//	gatectl -broker ... stream SERVICE.METHOD [ARG...]
//
// and every binary serving GET /metrics on -metrics-addr. The demo method
// names are the constants below.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gaterpc/gate/internal/gatetest"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	e2eService      = "demo"
	e2eEchoMethod   = "echo"  // unary, used by gatectl bench
	e2eFailMethod   = "fail"  // raises: produces non-OK status codes
	e2eStreamMethod = "count" // streams N items
	e2eHugeMethod   = "huge"  // returns a blob of the given size (huge-data path)
	e2eHugeSize     = "4194304"
	e2eStreamCount  = "5"

	e2eBenchDuration = 20 * time.Second
	e2eScrape        = "1s"
	// e2eRateInterval stands in for Grafana's $__rate_interval: at least four
	// scrapes.
	e2eRateInterval = "5s"
	e2eBuildTimeout = 5 * time.Minute
)

// e2eMayBeEmpty lists panels whose queries may legitimately return no data in
// this short scenario; they must still evaluate without error. Keep it short:
// prefer making the scenario produce the series.
var e2eMayBeEmpty = map[string]string{
	// A killed worker is expired only after the broker's heartbeat liveness
	// runs out, which may take longer than the scenario.
	"Worker expirations": "expirations need the heartbeat timeout to elapse",
	// Drops need malformed or unroutable frames, which the real clients never send.
	"Dropped messages": "no malformed frames in the scenario",
}

var e2eCmds = []string{"cmd/gate-broker", "cmd/gate-demo-worker", "cmd/gatectl"}

func TestE2EPrometheusEvaluatesEveryQuery(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range e2eCmds {
		if m, _ := filepath.Glob(filepath.Join(root, c, "*.go")); len(m) == 0 {
			t.Fatalf("%s has no Go files yet: this end-to-end test needs gate-broker, gate-demo-worker "+
				"and gatectl to build; it starts them with the flags documented in dashboards/e2e_test.go", c)
		}
	}
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found in PATH (%v): install the Debian package prometheus "+
			"(sudo apt-get install -y prometheus, which `make deps` does)", err)
	}

	bin := t.TempDir()
	e2eBuild(t, root, bin)
	logs := t.TempDir()

	front, back := gatetest.FreePortString(t), gatetest.FreePortString(t)
	brokerM, worker1M, worker2M, benchM := gatetest.FreePortString(t), gatetest.FreePortString(t), gatetest.FreePortString(t), gatetest.FreePortString(t)
	frontend := "tcp://127.0.0.1:" + front
	backend := "tcp://127.0.0.1:" + back

	startProc(t, logs, "broker", filepath.Join(bin, "gate-broker"),
		"-frontend", frontend, "-backend", backend, "-metrics-addr", "127.0.0.1:"+brokerM)
	waitHTTP(t, "broker metrics", "http://127.0.0.1:"+brokerM+"/metrics")
	startProc(t, logs, "worker1", filepath.Join(bin, "gate-demo-worker"),
		"-broker", backend, "-service", e2eService, "-metrics-addr", "127.0.0.1:"+worker1M)
	victim := startProc(t, logs, "worker2", filepath.Join(bin, "gate-demo-worker"),
		"-broker", backend, "-service", e2eService, "-metrics-addr", "127.0.0.1:"+worker2M)
	waitHTTP(t, "worker1 metrics", "http://127.0.0.1:"+worker1M+"/metrics")
	waitHTTP(t, "worker2 metrics", "http://127.0.0.1:"+worker2M+"/metrics")

	promPort := gatetest.FreePortString(t)
	promURL := "http://127.0.0.1:" + promPort
	cfg := filepath.Join(logs, "prometheus.yml")
	writeFile(t, cfg, fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: gate-broker
    static_configs: [{targets: ["127.0.0.1:%[2]s"]}]
  - job_name: gate-worker
    static_configs: [{targets: ["127.0.0.1:%[3]s", "127.0.0.1:%[4]s"]}]
  - job_name: gate-client
    static_configs: [{targets: ["127.0.0.1:%[5]s"]}]
`, e2eScrape, brokerM, worker1M, worker2M, benchM))
	startProc(t, logs, "prometheus", promBin,
		"--config.file="+cfg, "--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address=127.0.0.1:"+promPort, "--enable-feature=exemplar-storage",
		"--log.level=warn")
	waitHTTP(t, "prometheus ready", promURL+"/-/ready")
	api := &promAPI{t: t, base: promURL}
	api.waitFor(`sum(up{job=~"gate-broker|gate-worker"})`, 3, 20*time.Second)

	gatectl := filepath.Join(bin, "gatectl")
	start := time.Now()
	bench := startProc(t, logs, "bench", gatectl, "-broker", frontend, "bench",
		"-service", e2eService, "-method", e2eEchoMethod, "-concurrency", "4",
		"-duration", e2eBenchDuration.String(), "-metrics-addr", "127.0.0.1:"+benchM)

	// Errors, streams and huge data, twice, so that rates span the window.
	calls := func() {
		for range 5 {
			runCLI(t, logs, false, gatectl, "-broker", frontend, "-timeout", "10s", "call", e2eService+"."+e2eFailMethod)
		}
		runCLI(t, logs, true, gatectl, "-broker", frontend, "-timeout", "10s", "stream", e2eService+"."+e2eStreamMethod, e2eStreamCount)
		runCLI(t, logs, true, gatectl, "-broker", frontend, "-timeout", "20s", "call", e2eService+"."+e2eHugeMethod, e2eHugeSize)
	}
	calls()
	// A worker that dies without DISCONNECT is expired by the broker.
	victim.kill(t)
	sleepUntil(t, start.Add(e2eBenchDuration/2))
	calls()

	// bench may exit non-zero for the calls lost with the killed worker; its
	// metrics are what matters, so only log.
	if err := bench.wait(e2eBenchDuration + 20*time.Second); err != nil {
		t.Logf("gatectl bench: %v\n%s", err, tail(bench.log, 20))
	}
	sleepUntil(t, time.Now().Add(3*time.Second)) // three more scrapes after the last call
	end := time.Now()

	vals := api.resolveVariables(start, end)
	for _, f := range All() {
		for _, p := range panels(f.Dashboard) {
			for _, tg := range p.Targets {
				where := fmt.Sprintf("%s / %s / %s", f.Name, p.Title, tg.RefID)
				expr := expand(tg.Expr, vals[f.Name], e2eRateInterval)
				n, err := api.eval(expr, tg.Instant, start, end)
				switch {
				case err != nil:
					t.Errorf("%s: %s: %v", where, expr, err)
				case n == 0 && e2eMayBeEmpty[p.Title] != "":
					t.Logf("%s: no data (allowed: %s)", where, e2eMayBeEmpty[p.Title])
				case n == 0:
					t.Errorf("%s: no data for %s", where, expr)
				}
			}
		}
	}
}

// e2eBuild builds the three binaries into dir.
func e2eBuild(t *testing.T, root, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eBuildTimeout)
	defer cancel()
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, c := range e2eCmds {
		args = append(args, "./"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// proc is a started process; its owner (the test's cleanup) waits for it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error // receives cmd.Wait's result once
	err  error
	exit bool
}

// hermeticEnv drops GATE_* and OTEL_* from the environment so that only the
// flags configure the processes.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GATE_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startProc starts a long-running process with its output in logs/name.log;
// cleanup stops it with SIGTERM (SIGKILL after 5s) and waits for it.
func startProc(t *testing.T, logs, name, path string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(logs, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = lf, lf // *os.File: no copying goroutines
	cmd.Env = hermeticEnv()
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }() // owned by p; drained by wait
	t.Cleanup(func() {
		defer lf.Close()
		if !p.exit {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		if err := p.wait(5 * time.Second); err != nil && !p.killed() {
			t.Logf("%s exited: %v", name, err)
		}
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", name, tail(logPath, 30))
		}
	})
	return p
}

// wait waits up to d for the process to exit, killing it after that.
func (p *proc) wait(d time.Duration) error {
	if p.exit {
		return p.err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case p.err = <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		p.err = fmt.Errorf("%s did not exit within %s: killed (%v)", p.name, d, <-p.done)
	}
	p.exit = true
	return p.err
}

// kill sends SIGKILL: the process gets no chance to say goodbye.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	_ = p.wait(5 * time.Second)
}

func (p *proc) killed() bool {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return true
		}
	}
	return false
}

var cliSeq int

// runCLI runs a short gatectl command; when mustSucceed it fails the test on
// a non-zero exit.
func runCLI(t *testing.T, logs string, mustSucceed bool, path string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cliSeq++
	logPath := filepath.Join(logs, fmt.Sprintf("cli-%02d.log", cliSeq))
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = hermeticEnv()
	if err := cmd.Run(); err != nil && mustSucceed {
		t.Errorf("gatectl %s: %v\n%s", strings.Join(args, " "), err, tail(logPath, 10))
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "..."
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sleepUntil(t *testing.T, at time.Time) {
	t.Helper()
	if d := time.Until(at); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.Context().Done():
		}
	}
}

// waitHTTP polls u until it answers 200, for at most 20s.
func waitHTTP(t *testing.T, what, u string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		code, _, err := gatetest.HTTPGet(ctx, u)
		cancel()
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprint(code, err)
		time.Sleep(100 * time.Millisecond) // polling an external process
	}
	t.Fatalf("%s: %s not ready after 20s (last: %s)", what, u, last)
}

// promAPI talks to Prometheus' HTTP API.
type promAPI struct {
	t    *testing.T
	base string
}

type promResponse struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

func (a *promAPI) get(path string, params url.Values) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(a.t.Context(), 10*time.Second)
	defer cancel()
	code, body, err := gatetest.HTTPGet(ctx, a.base+path+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	var r promResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(body))
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// eval runs expr as an instant query at end, or as a range query over
// [start, end] like Grafana's range targets, and returns the series count.
func (a *promAPI) eval(expr string, instant bool, start, end time.Time) (int, error) {
	p := url.Values{"query": {expr}}
	path := "/api/v1/query"
	if instant {
		p.Set("time", ts(end))
	} else {
		path = "/api/v1/query_range"
		p.Set("start", ts(start))
		p.Set("end", ts(end))
		p.Set("step", "1")
	}
	data, err := a.get(path, p)
	if err != nil {
		return 0, err
	}
	var d struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return 0, err
	}
	return len(d.Result), nil
}

// waitFor polls until the scalar value of expr reaches at least want.
func (a *promAPI) waitFor(expr string, want float64, within time.Duration) {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		data, err := a.get("/api/v1/query", url.Values{"query": {expr}})
		if err == nil {
			var d struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			}
			if json.Unmarshal(data, &d) == nil && len(d.Result) == 1 {
				var v float64
				if s, ok := d.Result[0].Value[1].(string); ok {
					fmt.Sscan(s, &v)
				}
				if v >= want {
					return
				}
			}
		}
		time.Sleep(250 * time.Millisecond) // polling an external process
	}
	a.t.Fatalf("prometheus: %s did not reach %v within %s", expr, want, within)
}

// resolveVariables resolves each dashboard's variables in order through the
// label values API, as Grafana does: every label_values() variable must find
// at least one value. job and instance take their allValue (".*"), service
// takes the demo service, and method takes "All", which Grafana expands to the
// options (already filtered by service).
func (a *promAPI) resolveVariables(start, end time.Time) map[string]map[string]string {
	a.t.Helper()
	out := map[string]map[string]string{}
	for _, f := range All() {
		vals := map[string]string{DatasourceVar: "prometheus"}
		for _, v := range f.Dashboard.Templating.List {
			sel, label, ok := labelValues(v)
			if !ok {
				continue
			}
			sel = expand(sel, vals, e2eRateInterval)
			data, err := a.get("/api/v1/label/"+label+"/values", url.Values{
				"match[]": {sel}, "start": {ts(start)}, "end": {ts(end)},
			})
			var options []string
			if err == nil {
				err = json.Unmarshal(data, &options)
			}
			if err != nil || len(options) == 0 {
				a.t.Fatalf("%s: variable %s: label_values(%s, %s) found %v (err %v)", f.Name, v.Name, sel, label, options, err)
			}
			switch {
			case v.Name == "service" && slices.Contains(options, e2eService):
				vals[v.Name] = promRegexQuote(e2eService)
			case v.AllValue != "":
				vals[v.Name] = v.AllValue
			default:
				quoted := make([]string, len(options))
				for i, o := range options {
					quoted[i] = promRegexQuote(o)
				}
				vals[v.Name] = "(" + strings.Join(quoted, "|") + ")"
			}
		}
		out[f.Name] = vals
	}
	return out
}

// promRegexQuote escapes a label value for a =~ matcher inside a PromQL
// double-quoted string, as Grafana does for multi-value variables.
func promRegexQuote(s string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`)
}

func ts(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }
