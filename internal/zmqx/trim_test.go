package zmqx

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestRunTrimNative: on glibc the trimmer runs until its ctx ends and
// then returns; with interval 0 it returns at once. The memory it gives
// back is measured with real processes by internal/soak's TestChurn.
func TestRunTrimNative(t *testing.T) {
	if runtime.GOOS == "linux" && !CanTrimNative() {
		t.Log("C library is not glibc: TrimNative does nothing")
	}
	TrimNative() // must not crash, whatever it returns

	done := make(chan struct{})
	go func() { RunTrimNative(context.Background(), 0); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunTrimNative(interval 0) did not return")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { RunTrimNative(ctx, time.Millisecond); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunTrimNative did not return after its ctx ended")
	}
}
