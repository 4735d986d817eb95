package faults

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestClientVanishesMidStream runs a client in its own process (this test
// binary with GATE_FAULTS_CHILD set) that reads an endless stream, and
// SIGKILLs it. The broker must notice that the stream's items cannot be
// delivered, cancel the call on the worker (whose producer stops, ending
// the call with a final reply) and forget it: nothing in flight or live at
// the broker, and the worker serves other callers.
func TestClientVanishesMidStream(t *testing.T) {
	b := startBroker(t)
	startWorker(t, tcp(b.back))
	c := newClient(t, tcp(b.front))
	waitService(t, c)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+tcp(b.front))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GATE_TEST_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "streaming" {
		t.Fatalf("child client: %q, %v", line, err)
	}
	b.waitMetric(t, "gaterpc_broker_inflight_requests", func(v float64) bool { return v == 1 })

	killedAt := time.Now()
	_ = cmd.Process.Kill()
	<-waited
	b.idle(t)
	d := time.Since(killedAt)
	t.Logf("client SIGKILL mid-stream: broker idle (stream cancelled at the worker) after %v (%.1f intervals)", d.Round(time.Millisecond), intervals(d))
	if intervals(d) > recoveryBound {
		t.Errorf("broker idle %.1f intervals after the client vanished, want at most %d", intervals(d), recoveryBound)
	}
	if n := b.metric(t, "gaterpc_broker_live_workers"); n != 1 {
		t.Errorf("broker counts %v live workers, want 1", n)
	}
	waitService(t, c)
}
