package telemetry

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreDependencies enforces the dependency direction of STYLE.md:
// gate and broker carry metadata and call middleware, but import neither
// the OpenTelemetry API or SDK, nor client_golang, nor telemetry.
func TestCoreDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed on PATH to list dependencies: %v", err)
	}
	cmd := exec.CommandContext(testCtx(t), goBin, "list", "-deps", "github.com/gaterpc/gate/gate", "github.com/gaterpc/gate/broker")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	banned := []string{
		"go.opentelemetry.io/otel", // API, SDK and exporters alike (also otel/... and any otel* module)
		"github.com/prometheus/client_golang/",
		"github.com/gaterpc/gate/telemetry",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(pkg+"/", b) {
				t.Errorf("gate or broker depends on %s (banned: %s)", pkg, b)
			}
		}
	}
}
