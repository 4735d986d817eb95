package deploy

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v4"

	"github.com/gaterpc/gate/dashboards"
)

// promtool returns the path of promtool or fails the test: the alert rules
// must be checked in CI, so a missing tool is an error, not a skip.
func promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found in PATH (%v): install the Debian package prometheus "+
			"(sudo apt-get install -y prometheus, which `make deps` does)", err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	runPromtool(t, "check", "config", "prometheus.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", "alerts.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, "test", "rules", "alerts_test.yml")
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules checks the set of alerts, that every expression parses with
// the PromQL parser and selects only metrics the dashboards know
// (dashboards.Metrics), and that every alert is annotated for a human.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("parse alerts.yml: %v", err)
	}
	p := parser.NewParser(parser.Options{})
	known := dashboards.SeriesNames()
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			ast, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: ParseExpr(%q) error: %v", r.Alert, r.Expr, err)
				continue
			}
			parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !known[vs.Name] {
					t.Errorf("%s selects %q, which is not in dashboards.Metrics", r.Alert, vs.Name)
				}
				return nil
			})
			if r.Labels["severity"] == "" {
				t.Errorf("%s has no severity label", r.Alert)
			}
			for _, a := range []string{"summary", "description", "dashboard"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s has no %s annotation", r.Alert, a)
				}
			}
		}
	}
	sort.Strings(names)
	want := []string{"GateAvailabilityBurnRateFast", "GateAvailabilityBurnRateSlow", "GateErrorRatioHigh", "GateHeartbeatExpirations", "GateOldestQueuedAgeHigh", "GateWorkerPoolEmpty"}
	if !slices.Equal(names, want) {
		t.Errorf("alerts = %v, want %v", names, want)
	}
	// Each alert's dashboard annotation names a generated dashboard.
	uids := map[string]bool{}
	for _, f := range dashboards.All() {
		uids[f.Dashboard.UID] = true
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if d := r.Annotations["dashboard"]; !uids[d] {
				t.Errorf("%s: dashboard annotation %q is not a generated dashboard uid", r.Alert, d)
			}
		}
	}
}
