package gate

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gaterpc/gate/internal/codec"
)

// orphanParentEnv makes the test binary an orphanParent.
const orphanParentEnv = "GATE_TEST_ORPHAN_PARENT"

// procSleepPID writes the child's pid to a file, then works for a long
// time (bounded, so that nothing outlives a failed test for long).
var procSleepPID = MustProcessFunc("gate_test.sleep_pid", func(_ context.Context, file string) (int, error) {
	if err := os.WriteFile(file, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return 0, err
	}
	time.Sleep(30 * time.Second)
	return 0, nil
})

// orphanParent plays a worker: it starts a call of procSleepPID on a
// ProcessPool child and waits for it (until the test kills it).
func orphanParent(pidFile string) {
	pool, err := NewProcessPool(1)
	if err != nil {
		os.Exit(2)
	}
	body, _ := codec.EncodeRequestBody(procSleepPID.Name(), []any{pidFile}, nil)
	_, _ = pool.invoke(context.Background(), procSleepPID.Name(), body, nil)
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	// pid (comm) state ...: the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// A ProcessPool child in the middle of a long call dies with its worker
// process, even when the worker is SIGKILLed and cannot clean up.
func TestProcessChildDiesWithWorker(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), orphanParentEnv+"="+pidFile)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	deadline := time.Now().Add(20 * time.Second)
	for child == 0 {
		if time.Now().After(deadline) {
			_ = parent.Process.Kill()
			_ = parent.Wait()
			t.Fatal("the child never started its call")
		}
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
			child, _ = strconv.Atoi(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if !alive(child) {
		t.Fatalf("child %d is not running its call", child)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still runs 10s after its worker was killed", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
