package deploy

// The compose stack, started for real. TestComposeStack builds
// the gate image with docker compose, starts broker, two demo workers,
// traffic and Prometheus (the default profile: Grafana and Jaeger, which
// need public images, are in the `ui` profile), and checks what an operator
// would: calls go through across containers, Prometheus scrapes every
// target, every dashboard query has data, a killed worker comes back and
// registers again, and `down -v` removes everything.
//
// It runs only with GATE_COMPOSE_TEST=1, which `make compose-test` sets
// after building the base images from Debian packages
// (deploy/compose-images.sh) and passing them as GO_IMAGE, RUNTIME_IMAGE and
// PROMETHEUS_IMAGE; without them compose uses the public images.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/dashboards"
	"github.com/gaterpc/gate/internal/gatetest"
)

const (
	stackBuildTimeout = 20 * time.Minute // cold: compiles every dependency
	stackUpTimeout    = 5 * time.Minute
	stackCmdTimeout   = 2 * time.Minute
	stackWait         = 90 * time.Second // one condition (healthy, scraped, registered)
	// stackRateInterval stands in for Grafana's $__rate_interval: four
	// scrapes of deploy/prometheus/prometheus.yml's 5s interval.
	stackRateInterval = "20s"
	stackImage        = "gate-compose-test:local"
)

// stackMayBeEmpty lists the panels whose queries may have no data in this
// scenario; they must still evaluate without error.
var stackMayBeEmpty = map[string]string{
	"Dropped messages": "no malformed frames in the scenario",
}

// stack drives one compose project.
type stack struct {
	t       *testing.T
	root    string
	name    string   // compose project name, unique per run
	compose []string // "docker compose" or "docker-compose", then -f ... -p ...
	env     []string
}

func TestComposeStack(t *testing.T) {
	if os.Getenv("GATE_COMPOSE_TEST") != "1" {
		t.Skip("set GATE_COMPOSE_TEST=1 (make compose-test) to start the compose stack with a real Docker engine")
	}
	s := newStack(t)
	// down -v whatever happens, with the logs first when the test failed.
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.run(stackCmdTimeout, "logs", "--no-color", "--tail", "40")
			t.Logf("--- compose logs (tail) ---\n%s", out)
		}
		if out, err := s.run(stackCmdTimeout, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("cleanup: compose down -v: %v\n%s", err, out)
		}
	})

	start := time.Now()
	s.must(stackBuildTimeout, "build", "broker") // one image for the four gate services
	t.Logf("build: %s", time.Since(start).Round(time.Second))
	start = time.Now()
	s.must(stackUpTimeout, "up", "-d", "--no-build")
	services := []string{"broker", "worker1", "worker2", "traffic", "prometheus"}
	for _, svc := range services {
		s.waitHealthy(svc)
	}
	t.Logf("up and healthy: %s", time.Since(start).Round(time.Second))
	if got := s.services(); !slices.Equal(got, sorted(services)) {
		t.Fatalf("running services = %v, want %v (grafana and jaeger only with --profile ui)", got, sorted(services))
	}
	since := time.Now()

	// Calls across containers: gatectl in a container of the traffic
	// service (its network, env and keys) through the broker container.
	out := s.gatectl("call", "demo.echo", "hello")
	if !strings.Contains(out, `"hello"`) {
		t.Fatalf("gatectl call demo.echo hello printed %q, want the echo", out)
	}
	out = s.gatectl("-json", "services")
	if !strings.Contains(out, `"demo"`) {
		t.Fatalf("gatectl services printed %q, want demo", out)
	}
	out = s.gatectl("stream", "demo.count", "3")
	if got := strings.Fields(out); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("gatectl stream demo.count 3 printed %q", out)
	}

	prom := &promClient{t: t, base: "http://" + s.hostAddr("prometheus", "9090")}
	prom.waitTargetsUp(map[string]int{"gate-broker": 1, "gate-worker": 2, "gate-client": 1, "prometheus": 1})

	// A worker killed without a goodbye is expired by the broker; started
	// again, it registers again.
	broker := "http://" + s.hostAddr("broker", "9100") + "/metrics"
	s.waitWorkers(broker, 2)
	s.must(stackCmdTimeout, "kill", "-s", "SIGKILL", "worker2")
	s.waitWorkers(broker, 1)
	s.must(stackCmdTimeout, "start", "worker2")
	s.waitHealthy("worker2")
	s.waitWorkers(broker, 2)
	if out := s.gatectl("call", "demo.echo", "again"); !strings.Contains(out, `"again"`) {
		t.Fatalf("after the restart, gatectl call printed %q", out)
	}
	// The broker's own view (Gate.service_stats): both workers, each
	// registered with the CURVE key of docker-compose.yml's worker.key.
	var demo struct {
		Workers []struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"workers"`
	}
	out = s.gatectl("-json", "services", "demo")
	if err := json.Unmarshal([]byte(out), &demo); err != nil || len(demo.Workers) != 2 ||
		demo.Workers[0].ID == demo.Workers[1].ID || demo.Workers[0].Key == "" || demo.Workers[1].Key == "" {
		t.Fatalf("gatectl -json services demo printed %q (%v), want two workers with their CURVE key", out, err)
	}

	// Errors, a stream and huge data for the dashboards, then a few scrapes.
	s.gatectlScript(`for i in 1 2 3 4 5; do gatectl call demo.fail boom >/dev/null 2>&1 && exit 1 || true; done
gatectl stream demo.count 5 >/dev/null
gatectl -timeout 30s call demo.huge 4194304 >/dev/null`)
	sleepFor(t, 15*time.Second)
	prom.waitTargetsUp(map[string]int{"gate-broker": 1, "gate-worker": 2, "gate-client": 1, "prometheus": 1})
	prom.checkDashboards(since, time.Now())

	// down -v leaves no container, network or volume of the project.
	s.must(stackCmdTimeout, "down", "-v", "--remove-orphans", "-t", "5")
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", "label=com.docker.compose.project=" + s.name}
		if kind == "container" {
			args = []string{"ps", "-a", "-q", "--filter", "label=com.docker.compose.project=" + s.name}
		}
		out, err := s.docker(stackCmdTimeout, args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.TrimSpace(out) != "" {
			t.Errorf("after down -v, %ss of project %s remain: %s", kind, s.name, out)
		}
	}
	// Named volumes and the default network by name, for engines that
	// do not label them.
	out, _ = s.docker(stackCmdTimeout, "volume", "ls", "-q")
	for _, v := range strings.Fields(out) {
		if strings.HasPrefix(v, s.name+"_") {
			t.Errorf("after down -v, volume %s remains", v)
		}
	}
	out, _ = s.docker(stackCmdTimeout, "network", "ls", "--format", "{{.Name}}")
	for _, n := range strings.Fields(out) {
		if strings.HasPrefix(n, s.name+"_") {
			t.Errorf("after down -v, network %s remains", n)
		}
	}
}

func newStack(t *testing.T) *stack {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, root: root, name: fmt.Sprintf("gatetest%d%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	file := filepath.Join(root, "docker-compose.yml")
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		s.compose = []string{"docker", "compose"}
	case exec.Command("docker-compose", "version").Run() == nil:
		// Compose v1 (Debian 12's docker-compose 1.29) rejects the
		// top-level `name:` of the Compose Specification; -p names the
		// project anyway, so run a copy without it.
		s.compose = []string{"docker-compose"}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		file = filepath.Join(t.TempDir(), "docker-compose.yml")
		writeFile(t, file, regexp.MustCompile(`(?m)^name:.*\n`).ReplaceAllString(string(b), ""))
	default:
		t.Fatal("neither `docker compose` nor `docker-compose` works; install Docker Compose")
	}
	s.compose = append(s.compose, "-f", file, "--project-directory", root, "-p", s.name)
	if out, err := s.docker(stackCmdTimeout, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Fatalf("docker engine not reachable: %v\n%s", err, out)
	}
	// The environment of compose: the base images from make compose-test
	// (or the public defaults), our own image tag, no profile.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "COMPOSE_") {
			continue
		}
		s.env = append(s.env, kv)
	}
	s.env = append(s.env, "GATE_IMAGE="+stackImage)
	for _, k := range []string{"GO_IMAGE", "RUNTIME_IMAGE", "PROMETHEUS_IMAGE"} {
		t.Logf("%s=%s", k, os.Getenv(k))
	}
	return s
}

// run runs a compose subcommand and returns its combined output.
func (s *stack) run(timeout time.Duration, args ...string) (string, error) {
	stdout, stderr, err := s.run2(timeout, args...)
	return stderr + stdout, err
}

// run2 runs a compose subcommand and returns its stdout and stderr.
func (s *stack) run2(timeout time.Duration, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout) // also used in cleanup
	defer cancel()
	argv := append(slices.Clone(s.compose[1:]), args...)
	cmd := exec.CommandContext(ctx, s.compose[0], argv...)
	cmd.Dir = s.root
	cmd.Env = s.env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timeout %s)", err, timeout)
	}
	return stdout.String(), stderr.String(), err
}

// must runs a compose subcommand, fails the test when it fails and returns
// its stdout.
func (s *stack) must(timeout time.Duration, args ...string) string {
	s.t.Helper()
	stdout, stderr, err := s.run2(timeout, args...)
	if err != nil {
		s.t.Fatalf("compose %s: %v\n%s%s", strings.Join(args, " "), err, tailString(stderr, 40), tailString(stdout, 20))
	}
	return stdout
}

func (s *stack) docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// gatectl runs gatectl ARGS in a one-off container of the traffic service
// and returns its stdout; a non-zero exit fails the test.
func (s *stack) gatectl(args ...string) string {
	s.t.Helper()
	return s.must(stackCmdTimeout, append([]string{"run", "--rm", "--no-deps", "-T", "traffic", "gatectl"}, args...)...)
}

// gatectlScript runs a sh script in a one-off container of the traffic
// service; set -e makes a failing gatectl fail the test.
func (s *stack) gatectlScript(script string) {
	s.t.Helper()
	s.must(stackCmdTimeout, "run", "--rm", "--no-deps", "-T", "traffic", "sh", "-ec", script)
}

// containerID returns the id of the service's (single) container.
func (s *stack) containerID(svc string) string {
	s.t.Helper()
	out, err := s.run(stackCmdTimeout, "ps", "-q", svc)
	id := strings.TrimSpace(out)
	if err != nil || id == "" || strings.Contains(id, "\n") {
		s.t.Fatalf("compose ps -q %s: %v %q", svc, err, out)
	}
	return id
}

// services lists the services with a running container.
func (s *stack) services() []string {
	s.t.Helper()
	out, err := s.docker(stackCmdTimeout, "ps", "--filter", "label=com.docker.compose.project="+s.name,
		"--format", `{{.Label "com.docker.compose.service"}}`)
	if err != nil {
		s.t.Fatalf("docker ps: %v\n%s", err, out)
	}
	return sorted(strings.Fields(out))
}

// waitHealthy waits until the service's container reports healthy (or,
// without a healthcheck, runs).
func (s *stack) waitHealthy(svc string) {
	s.t.Helper()
	deadline := time.Now().Add(stackWait)
	var last string
	for time.Now().Before(deadline) {
		id := s.containerID(svc)
		out, err := s.docker(stackCmdTimeout, "inspect", "--format",
			"{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", id)
		last = strings.TrimSpace(out)
		if err == nil && (last == "running healthy" || last == "running none") {
			return
		}
		sleepFor(s.t, time.Second) // polling an external process
	}
	s.t.Fatalf("service %s not healthy within %s (last: %s)", svc, stackWait, last)
}

// hostAddr returns 127.0.0.1:PORT for the host port compose published for
// the service's container port.
func (s *stack) hostAddr(svc, port string) string {
	s.t.Helper()
	out := strings.TrimSpace(s.must(stackCmdTimeout, "port", svc, port))
	_, p, err := net.SplitHostPort(out)
	if err != nil {
		s.t.Fatalf("compose port %s %s = %q: %v", svc, port, out, err)
	}
	return net.JoinHostPort("127.0.0.1", p)
}

// waitWorkers waits until the broker's /metrics counts want live workers
// of the demo service (gaterpc_broker_workers summed over states).
func (s *stack) waitWorkers(metricsURL string, want int) {
	s.t.Helper()
	deadline := time.Now().Add(stackWait)
	last := -1
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
		code, body, err := gatetest.HTTPGet(ctx, metricsURL)
		cancel()
		if err == nil && code == http.StatusOK {
			last = demoWorkers(body)
			if last == want {
				return
			}
		}
		sleepFor(s.t, 500*time.Millisecond) // polling an external process
	}
	s.t.Fatalf("broker: %d live demo workers after %s, want %d", last, stackWait, want)
}

// demoWorkers sums gaterpc_broker_workers{service="demo"} of an exposition.
func demoWorkers(body []byte) int {
	n := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gaterpc_broker_workers{") || !strings.Contains(line, `service="demo"`) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			n += v
		}
	}
	return int(n)
}

// promClient talks to Prometheus' HTTP API.
type promClient struct {
	t    *testing.T
	base string
}

func (p *promClient) get(path string, params url.Values) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(p.t.Context(), 10*time.Second)
	defer cancel()
	code, body, err := gatetest.HTTPGet(ctx, p.base+path+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	var r struct {
		Status    string          `json:"status"`
		Error     string          `json:"error"`
		ErrorType string          `json:"errorType"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(body))
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// waitTargetsUp waits until Prometheus has exactly the wanted number of
// active targets per job, every one of them up.
func (p *promClient) waitTargetsUp(want map[string]int) {
	p.t.Helper()
	deadline := time.Now().Add(stackWait)
	var last string
	for time.Now().Before(deadline) {
		data, err := p.get("/api/v1/targets", url.Values{"state": {"active"}})
		if err != nil {
			last = err.Error()
		} else {
			var d struct {
				ActiveTargets []struct {
					ScrapePool string `json:"scrapePool"`
					ScrapeURL  string `json:"scrapeUrl"`
					Health     string `json:"health"`
					LastError  string `json:"lastError"`
				} `json:"activeTargets"`
			}
			if err := json.Unmarshal(data, &d); err != nil {
				p.t.Fatalf("targets: %v", err)
			}
			got := map[string]int{}
			var down []string
			for _, tg := range d.ActiveTargets {
				got[tg.ScrapePool]++
				if tg.Health != "up" {
					down = append(down, fmt.Sprintf("%s %s: %s %s", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastError))
				}
			}
			if len(down) == 0 && fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			last = fmt.Sprintf("targets per job %v, not up: %v", got, down)
		}
		sleepFor(p.t, time.Second) // polling an external process
	}
	p.t.Fatalf("prometheus: targets not all up within %s, want %v: %s", stackWait, want, last)
}

// checkDashboards resolves every dashboard's variables as Grafana does and
// evaluates every panel query over [start, end]: each must succeed, and
// return data unless stackMayBeEmpty says why not.
func (p *promClient) checkDashboards(start, end time.Time) {
	p.t.Helper()
	n := 0
	for _, f := range dashboards.All() {
		vals := p.variables(f, start, end)
		for _, pn := range allPanels(f.Dashboard.Panels) {
			for _, tg := range pn.Targets {
				n++
				where := fmt.Sprintf("%s / %s / %s", f.Name, pn.Title, tg.RefID)
				expr := expandVars(tg.Expr, vals)
				q := url.Values{"query": {expr}}
				path := "/api/v1/query"
				if tg.Instant {
					q.Set("time", promTS(end))
				} else {
					path = "/api/v1/query_range"
					q.Set("start", promTS(start))
					q.Set("end", promTS(end))
					q.Set("step", "5")
				}
				data, err := p.get(path, q)
				var d struct {
					Result []json.RawMessage `json:"result"`
				}
				if err == nil {
					err = json.Unmarshal(data, &d)
				}
				switch {
				case err != nil:
					p.t.Errorf("%s: %s: %v", where, expr, err)
				case len(d.Result) == 0 && stackMayBeEmpty[pn.Title] != "":
					p.t.Logf("%s: no data (allowed: %s)", where, stackMayBeEmpty[pn.Title])
				case len(d.Result) == 0:
					p.t.Errorf("%s: no data for %s", where, expr)
				}
			}
		}
	}
	if n == 0 {
		p.t.Fatal("the dashboards have no queries")
	}
	p.t.Logf("evaluated %d dashboard queries", n)
}

var labelValuesRe = regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)

// variables resolves a dashboard's label_values() variables in order, as
// Grafana does: each must find a value. service takes demo, variables
// with an allValue take it, the others all their options.
func (p *promClient) variables(f dashboards.File, start, end time.Time) map[string]string {
	p.t.Helper()
	vals := map[string]string{dashboards.DatasourceVar: "prometheus"}
	for _, v := range f.Dashboard.Templating.List {
		m := labelValuesRe.FindStringSubmatch(v.Definition)
		if v.Type != "query" || m == nil {
			continue
		}
		sel := expandVars(m[1], vals)
		data, err := p.get("/api/v1/label/"+m[2]+"/values", url.Values{
			"match[]": {sel}, "start": {promTS(start)}, "end": {promTS(end)},
		})
		var options []string
		if err == nil {
			err = json.Unmarshal(data, &options)
		}
		if err != nil || len(options) == 0 {
			p.t.Fatalf("%s: variable %s: label_values(%s, %s) found %v (err %v)", f.Name, v.Name, sel, m[2], options, err)
		}
		switch {
		case v.Name == "service" && slices.Contains(options, "demo"):
			vals[v.Name] = "demo"
		case v.AllValue != "":
			vals[v.Name] = v.AllValue
		default:
			for i, o := range options {
				options[i] = strings.ReplaceAll(regexp.QuoteMeta(o), `\`, `\\`)
			}
			vals[v.Name] = "(" + strings.Join(options, "|") + ")"
		}
	}
	return vals
}

// allPanels returns the non-row panels, including those nested in rows.
func allPanels(ps []*dashboards.Panel) []*dashboards.Panel {
	var out []*dashboards.Panel
	for _, p := range ps {
		if p.Type == dashboards.KindRow {
			out = append(out, allPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

var varRe = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// expandVars substitutes template variables and Grafana's built-in
// intervals as Grafana does before sending a query.
func expandVars(expr string, vals map[string]string) string {
	return varRe.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		switch name {
		case "__rate_interval", "__interval", "__range":
			return stackRateInterval
		}
		if v, ok := vals[name]; ok {
			return v
		}
		return m
	})
}

func promTS(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sleepFor(t *testing.T, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.Context().Done():
	}
}
