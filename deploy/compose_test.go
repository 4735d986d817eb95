package deploy

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// documentedPorts are the host ports deploy/README.md promises, by service.
var documentedPorts = map[string][]string{
	"broker":     {"5555", "5556", "9100"},
	"worker1":    {"9101"},
	"worker2":    {"9102"},
	"traffic":    {"9103"},
	"prometheus": {"9090"},
	"grafana":    {"3000"},
	"jaeger":     {"16686", "4317", "4318"},
}

// gateBinaries are the binaries of the gate image; a service running one is a
// "gate service" and must carry a healthcheck through its health subcommand.
var gateBinaries = []string{"gate-broker", "gate-demo-worker", "gatectl"}

// uiServices are the services of the `ui` compose profile: they need public
// images, so `make compose-test` runs the stack without them.
var uiServices = []string{"grafana", "jaeger"}

// loadProject loads ../docker-compose.yml the way `docker compose
// --profile '*'` does (every service), with schema validation,
// interpolation and consistency checks, but without the caller's
// environment.
func loadProject(t testing.TB) *types.Project {
	t.Helper()
	return loadProjectProfiles(t, "*")
}

// loadProjectProfiles loads ../docker-compose.yml with the given profiles
// active (none: the default services only).
func loadProjectProfiles(t testing.TB, profiles ...string) *types.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithName("gate"),
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load (schema or consistency): %v", err)
	}
	return p
}

func isGateService(s types.ServiceConfig) bool {
	return s.Build != nil || (len(s.Command) > 0 && slices.Contains(gateBinaries, s.Command[0]))
}

func TestComposeServices(t *testing.T) {
	p := loadProject(t)
	var got []string
	for name := range p.Services {
		got = append(got, name)
	}
	sort.Strings(got)
	var want []string
	for name := range documentedPorts {
		want = append(want, name)
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("compose services = %v, want %v", got, want)
	}
}

var tagRe = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)

func TestComposeImagesPinned(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		img := s.Image
		if img == "" {
			t.Errorf("service %s has no image", name)
			continue
		}
		if _, digest, ok := strings.Cut(img, "@"); ok {
			if !strings.HasPrefix(digest, "sha256:") {
				t.Errorf("service %s image %q: bad digest", name, img)
			}
			continue
		}
		last := img[strings.LastIndex(img, "/")+1:]
		_, tag, ok := strings.Cut(last, ":")
		switch {
		case !ok || tag == "":
			t.Errorf("service %s image %q has no tag; pin a version", name, img)
		case tag == "latest":
			t.Errorf("service %s image %q uses latest; pin a version", name, img)
		case !tagRe.MatchString(tag):
			t.Errorf("service %s image %q has an invalid tag", name, img)
		}
	}
}

// TestComposeProfiles checks that without a profile the stack is the gate
// services and Prometheus, self-contained (what make compose-test starts
// without public images), and that Grafana and Jaeger come with `ui`.
func TestComposeProfiles(t *testing.T) {
	p := loadProjectProfiles(t)
	var got []string
	for name, s := range p.Services {
		got = append(got, name)
		for dep := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				t.Errorf("service %s (default profile) depends on %s, which is not in the default profile", name, dep)
			}
		}
	}
	sort.Strings(got)
	if want := []string{"broker", "prometheus", "traffic", "worker1", "worker2"}; !slices.Equal(got, want) {
		t.Errorf("default services = %v, want %v", got, want)
	}
	ui := loadProjectProfiles(t, "ui")
	for _, name := range uiServices {
		s, ok := ui.Services[name]
		if !ok {
			t.Errorf("service %s is not started by --profile ui", name)
			continue
		}
		if !slices.Equal(s.Profiles, []string{"ui"}) {
			t.Errorf("service %s profiles = %v, want [ui]", name, s.Profiles)
		}
	}
	if len(ui.Services) != len(documentedPorts) {
		t.Errorf("--profile ui starts %d services, want all %d", len(ui.Services), len(documentedPorts))
	}
}

// TestComposeImageOverrides checks the variables make compose-test sets:
// GO_IMAGE and RUNTIME_IMAGE reach the build as args whose defaults are the
// Dockerfile's, GATE_IMAGE names the gate image, PROMETHEUS_IMAGE replaces
// Prometheus' image.
func TestComposeImageOverrides(t *testing.T) {
	args := dockerfileArgs(t)
	p := loadProject(t)
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		for _, k := range []string{"GO_IMAGE", "RUNTIME_IMAGE"} {
			v := s.Build.Args[k]
			if v == nil || *v != args[k] {
				t.Errorf("service %s build arg %s = %v, want the Dockerfile default %q", name, k, v, args[k])
			}
		}
		if s.Image != "gate:local" {
			t.Errorf("service %s image = %q, want gate:local", name, s.Image)
		}
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("gate"), cli.WithInterpolation(true),
		cli.WithEnv([]string{"GO_IMAGE=b:1", "RUNTIME_IMAGE=r:1", "GATE_IMAGE=g:1", "PROMETHEUS_IMAGE=p:1"}))
	if err != nil {
		t.Fatal(err)
	}
	o, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range o.Services {
		switch {
		case s.Build != nil:
			if *s.Build.Args["GO_IMAGE"] != "b:1" || *s.Build.Args["RUNTIME_IMAGE"] != "r:1" || s.Image != "g:1" {
				t.Errorf("service %s ignores GO_IMAGE, RUNTIME_IMAGE or GATE_IMAGE: %v %s", name, s.Build.Args, s.Image)
			}
		case name == "prometheus":
			if s.Image != "p:1" {
				t.Errorf("prometheus image = %q with PROMETHEUS_IMAGE=p:1", s.Image)
			}
		}
	}
}

// dockerfileArgs returns the ARG defaults declared before the first FROM.
func dockerfileArgs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			return args
		case "ARG":
			k, v, _ := strings.Cut(f[1], "=")
			args[k] = v
		}
	}
	return args
}

func TestComposeDependsOn(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case types.ServiceConditionStarted, types.ServiceConditionCompletedSuccessfully:
			default:
				t.Errorf("service %s depends on %s with condition %q", name, dep, d.Condition)
			}
		}
	}
	// The gate services start in order: broker, then workers, then traffic.
	for _, edge := range [][2]string{{"worker1", "broker"}, {"worker2", "broker"}, {"traffic", "worker1"}, {"traffic", "worker2"}, {"grafana", "prometheus"}} {
		if d, ok := p.Services[edge[0]].DependsOn[edge[1]]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("service %s should depend on %s being healthy", edge[0], edge[1])
		}
	}
}

func TestComposeGateServices(t *testing.T) {
	p := loadProject(t)
	n := 0
	for name, s := range p.Services {
		if !isGateService(s) {
			continue
		}
		n++
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 3 {
			t.Errorf("gate service %s has no healthcheck", name)
		} else if hc.Test[0] != "CMD" || !slices.Contains(gateBinaries, hc.Test[1]) || hc.Test[2] != "health" {
			t.Errorf("gate service %s healthcheck = %v, want [CMD <gate binary> health]", name, hc.Test)
		}
		env := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		if got := env("OTEL_EXPORTER_OTLP_ENDPOINT"); got != "http://jaeger:4317" {
			t.Errorf("gate service %s OTEL_EXPORTER_OTLP_ENDPOINT = %q, want http://jaeger:4317", name, got)
		}
		if env("OTEL_SERVICE_NAME") == "" {
			t.Errorf("gate service %s has no OTEL_SERVICE_NAME", name)
		}
		if _, port, err := net.SplitHostPort(env("GATE_METRICS_ADDR")); err != nil || !slices.Contains(documentedPorts[name], port) {
			t.Errorf("gate service %s GATE_METRICS_ADDR = %q, want a documented port of %v", name, env("GATE_METRICS_ADDR"), documentedPorts[name])
		}
		if s.User == "root" || s.User == "0" {
			t.Errorf("gate service %s runs as root", name)
		}
	}
	if n != 4 {
		t.Errorf("found %d gate services, want 4 (broker, worker1, worker2, traffic)", n)
	}
}

func TestComposePorts(t *testing.T) {
	p := loadProject(t)
	seen := map[string]string{}
	for name, s := range p.Services {
		var got []string
		for _, pc := range s.Ports {
			if pc.Published == "" {
				t.Errorf("service %s exposes container port %d on a random host port", name, pc.Target)
				continue
			}
			if pc.Published != fmt.Sprint(pc.Target) {
				t.Errorf("service %s maps host %s to container %d; keep them equal", name, pc.Published, pc.Target)
			}
			if other, dup := seen[pc.Published]; dup {
				t.Errorf("host port %s published by %s and %s", pc.Published, other, name)
			}
			seen[pc.Published] = name
			got = append(got, pc.Published)
		}
		want := slices.Clone(documentedPorts[name])
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("service %s publishes %v, deploy/README.md documents %v", name, got, want)
		}
	}
}

// TestReadmePortTable keeps the port table of deploy/README.md and
// documentedPorts in step.
func TestReadmePortTable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\|\s*(\d+)\s*\|\s*(\w+)\s*\|`)
	got := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		got[m[2]] = append(got[m[2]], m[1])
	}
	for svc, ports := range documentedPorts {
		g := slices.Clone(got[svc])
		w := slices.Clone(ports)
		sort.Strings(g)
		sort.Strings(w)
		if !slices.Equal(g, w) {
			t.Errorf("README.md port table lists %v for %s, want %v", g, svc, w)
		}
	}
	if len(got) != len(documentedPorts) {
		t.Errorf("README.md port table has services %v, want those of %v", got, documentedPorts)
	}
}

func TestComposeMountsExist(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("service %s mounts undeclared volume %q", name, v.Source)
				}
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which does not exist in the repo: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s mounts %s read-write; use :ro", name, v.Source)
			}
		}
	}
}

// hostPath maps a path inside a service's container to the repo file
// bind-mounted there, or "" if none.
func hostPath(s types.ServiceConfig, inContainer string) string {
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if rel, err := filepath.Rel(v.Target, inContainer); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(v.Source, rel)
		}
	}
	return ""
}

func TestComposePrometheusScrapesGateServices(t *testing.T) {
	p := loadProject(t)
	prom := p.Services["prometheus"]
	cfgPath := hostPath(prom, "/etc/prometheus/prometheus.yml")
	if cfgPath == "" || !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Fatalf("prometheus must read /etc/prometheus/prometheus.yml from a bind mount of deploy/prometheus; command %v", prom.Command)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]string{} // service -> job
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("job %s: bad target %q", sc.JobName, target)
					continue
				}
				if host == "localhost" {
					continue
				}
				s, ok := p.Services[host]
				if !ok {
					t.Errorf("job %s scrapes %s, which is not a compose service", sc.JobName, target)
					continue
				}
				addr := ""
				if v := s.Environment["GATE_METRICS_ADDR"]; v != nil {
					addr = *v
				}
				if _, mport, _ := net.SplitHostPort(addr); mport != port {
					t.Errorf("job %s scrapes %s but %s serves metrics on %q", sc.JobName, target, host, addr)
				}
				scraped[host] = sc.JobName
			}
		}
	}
	wantJobs := map[string]string{"broker": "gate-broker", "worker1": "gate-worker", "worker2": "gate-worker", "traffic": "gate-client"}
	for svc, job := range wantJobs {
		if scraped[svc] != job {
			t.Errorf("service %s is scraped by job %q, want %q", svc, scraped[svc], job)
		}
	}
}

func TestComposeGrafanaProvisioning(t *testing.T) {
	p := loadProject(t)
	g := p.Services["grafana"]
	env := func(k string) string {
		if v := g.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if env("GF_AUTH_ANONYMOUS_ENABLED") != "true" || env("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
		t.Errorf("grafana must allow anonymous viewers")
	}
	home := hostPath(g, env("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"))
	if filepath.Base(home) != "overview.json" {
		t.Errorf("home dashboard %q, want the generated overview.json", env("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"))
	} else if _, err := os.Stat(home); err != nil {
		t.Errorf("home dashboard: %v", err)
	}

	// The dashboard provider reads the directory the dashboards are mounted at.
	b, err := os.ReadFile(hostPath(g, "/etc/grafana/provisioning/dashboards/dashboards.yml"))
	if err != nil {
		t.Fatalf("dashboard provider: %v", err)
	}
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 {
		t.Fatalf("dashboard providers = %d, want 1", len(prov.Providers))
	}
	dir := hostPath(g, prov.Providers[0].Options.Path)
	if _, err := os.Stat(filepath.Join(dir, "overview.json")); err != nil {
		t.Errorf("provider path %s does not hold the dashboards: %v", prov.Providers[0].Options.Path, err)
	}

	// Datasources: Prometheus (uid matching the dashboards' default) with
	// exemplars linking to Jaeger by trace_id.
	b, err = os.ReadFile(hostPath(g, "/etc/grafana/provisioning/datasources/datasources.yml"))
	if err != nil {
		t.Fatalf("datasources: %v", err)
	}
	var ds struct {
		Datasources []struct {
			Name     string `yaml:"name"`
			UID      string `yaml:"uid"`
			Type     string `yaml:"type"`
			URL      string `yaml:"url"`
			JSONData struct {
				TimeInterval                string `yaml:"timeInterval"`
				ExemplarTraceIDDestinations []struct {
					Name          string `yaml:"name"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	byType := map[string]int{}
	for i, d := range ds.Datasources {
		byType[d.Type] = i
	}
	pi, okP := byType["prometheus"]
	ji, okJ := byType["jaeger"]
	if !okP || !okJ {
		t.Fatalf("datasources %+v: want prometheus and jaeger", ds.Datasources)
	}
	prom, jaeger := ds.Datasources[pi], ds.Datasources[ji]
	if prom.UID != "prometheus" {
		t.Errorf("prometheus datasource uid = %q, want prometheus (the dashboards' default)", prom.UID)
	}
	if prom.URL != "http://prometheus:9090" || jaeger.URL != "http://jaeger:16686" {
		t.Errorf("datasource urls = %q, %q", prom.URL, jaeger.URL)
	}
	ex := prom.JSONData.ExemplarTraceIDDestinations
	if len(ex) != 1 || ex[0].Name != "trace_id" || ex[0].DatasourceUID != jaeger.UID {
		t.Errorf("exemplarTraceIdDestinations = %+v, want [{trace_id %s}]", ex, jaeger.UID)
	}
	if prom.JSONData.TimeInterval != "5s" {
		t.Errorf("prometheus timeInterval = %q, want the 5s scrape interval", prom.JSONData.TimeInterval)
	}
}

// TestDockerfile checks the shape of the image: a cgo build stage with
// libzmq3-dev, a slim runtime with libzmq5, a non-root user, a healthcheck.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	args := dockerfileArgs(t)
	var froms, users []string
	health := ""
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, os.Expand(f[1], func(k string) string { return args[k] }))
		case "USER":
			users = append(users, f[1])
		case "HEALTHCHECK":
			health = line
		}
	}
	if !slices.Equal(froms, []string{"golang:1.26-bookworm", "debian:bookworm-slim"}) {
		t.Errorf("FROM = %v, want golang:1.26-bookworm then debian:bookworm-slim", froms)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "root") || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("USER = %v, want a non-root user last", users)
	}
	if health == "" {
		t.Errorf("no HEALTHCHECK")
	}
	if !strings.Contains(df, "FROM ${GO_IMAGE} AS build") || !strings.Contains(df, "FROM ${RUNTIME_IMAGE}") {
		t.Errorf("the base images must be the build args GO_IMAGE and RUNTIME_IMAGE")
	}
	// The classic builder (Docker without buildx, as on the project's
	// machines) has no RUN --mount, and a syntax directive pulls an image.
	if regexp.MustCompile(`(?m)^RUN\s+--mount|^#\s*syntax=`).MatchString(df) {
		t.Errorf("Dockerfile needs BuildKit (RUN --mount or # syntax=); make compose-test builds with the classic builder")
	}
	// Local base images already hold the packages: apt-get only when missing.
	if n := strings.Count(df, "dpkg -s "); n != 2 {
		t.Errorf("Dockerfile checks installed packages with dpkg -s %d times, want 2 (build and runtime)", n)
	}
	for _, want := range []string{"libzmq3-dev", "pkg-config", "libzmq5", "ca-certificates", "/usr/local/bin/", "./cmd/..."} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The context must keep go.mod, go.sum and the sources.
	ign, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ign), "\n") {
		switch strings.TrimSpace(line) {
		case "go.mod", "go.sum", "cmd", "cmd/", "*.go", "**/*.go", "internal", "gate", "broker", "telemetry":
			t.Errorf(".dockerignore excludes %q, which the build needs", line)
		}
	}
}
