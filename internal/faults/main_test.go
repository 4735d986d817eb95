package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Paths of the binaries under test, built by TestMain.
var brokerBin, workerBin string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	dir, err := os.MkdirTemp("", "gate-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	brokerBin = filepath.Join(dir, "gate-broker")
	workerBin = filepath.Join(dir, "gate-demo-worker")
	for bin, pkg := range map[string]string{brokerBin: "../../cmd/gate-broker", workerBin: "../../cmd/gate-demo-worker"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "faults: go build %s: %v\n", pkg, err)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	goleak.VerifyTestMain(runner{m, dir})
}

// runner removes the binaries' directory after the tests, before
// goleak.VerifyTestMain exits.
type runner struct {
	m   *testing.M
	dir string
}

func (r runner) Run() int {
	code := r.m.Run()
	_ = os.RemoveAll(r.dir)
	return code
}
