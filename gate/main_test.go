package gate

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain is the only TestMain of package gate. It first lets a process
// executor child take over (RunChildIfRequested returns only in the
// parent), then runs the tests under goleak.
func TestMain(m *testing.M) {
	if RunChildIfRequested() {
		os.Exit(0)
	}
	if pidFile := os.Getenv(orphanParentEnv); pidFile != "" {
		orphanParent(pidFile) // a worker process for TestProcessChildDiesWithWorker
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
