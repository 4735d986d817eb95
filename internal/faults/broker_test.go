package faults

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
)

// TestBrokerRestart SIGKILLs the broker with calls in flight and starts a
// new one on the same ports after 2 s (and 10 s with GATE_FAULTS_LONG=1).
// A call not marked idempotent fails at once with ErrBrokerLost; an
// idempotent one is retried and answered once the service is back; the
// service answers again within a few intervals of the new broker's start.
func TestBrokerRestart(t *testing.T) {
	downs := []time.Duration{2 * time.Second}
	if os.Getenv("GATE_FAULTS_LONG") != "" {
		downs = append(downs, 10*time.Second)
	}
	for _, down := range downs {
		t.Run(down.String(), func(t *testing.T) {
			b := startBroker(t)
			startWorker(t, tcp(b.back))
			c := newClient(t, tcp(b.front), gate.WithRetry(gate.RetryPolicy{MaxAttempts: 10, MaxBackoff: 500 * time.Millisecond}))
			waitService(t, c)

			ctx := testCtx(t)
			plain := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, "demo.sleep", 60.0)
				plain <- err
			}()
			idem := make(chan error, 1)
			go func() {
				// Long enough to be in flight at the kill, short
				// enough to finish after the restart.
				v, err := c.Call(gate.Idempotent(ctx), "demo.sleep", 0.8)
				if err == nil && v != 0.8 {
					err = errors.New("wrong result")
				}
				idem <- err
			}()
			b.waitMetric(t, "gaterpc_broker_inflight_requests", func(v float64) bool { return v == 2 })

			killedAt := time.Now()
			b.signal(t, syscall.SIGKILL)
			<-b.done
			var err error
			select {
			case err = <-plain:
			case <-time.After(down):
				t.Fatalf("the call in flight had no error %v after the broker's SIGKILL", down)
			}
			lost := time.Since(killedAt)
			t.Logf("broker SIGKILL: call in flight failed after %v (%.1f intervals): %v", lost.Round(time.Millisecond), intervals(lost), err)
			if !errors.Is(err, gate.ErrBrokerLost) {
				t.Errorf("call in flight = %v, want ErrBrokerLost", err)
			}
			if intervals(lost) > 5 {
				t.Errorf("ErrBrokerLost after %.1f intervals, want at most 5", intervals(lost))
			}

			time.Sleep(down - time.Since(killedAt))
			restartAt := time.Now()
			b.restart(t)
			backAt := waitService(t, c)
			back := backAt.Sub(restartAt)
			err = <-idem
			idemAt := time.Since(restartAt)
			t.Logf("broker back after %v down: service answers %v (%.1f intervals) after the restart; idempotent call in flight at the kill: %v, %v after the restart",
				down, back.Round(time.Millisecond), intervals(back), err, idemAt.Round(time.Millisecond))
			// Its retries (a few, within the budget) cover a 2 s outage; a
			// longer one may exhaust them: then it fails with ErrBrokerLost.
			if err != nil && (down <= 2*time.Second || !errors.Is(err, gate.ErrBrokerLost)) {
				t.Errorf("idempotent call in flight at the kill = %v, want it retried and answered", err)
			}
			if intervals(back) > recoveryBound {
				t.Errorf("service back %.1f intervals after the broker's restart, want at most %d", intervals(back), recoveryBound)
			}
			b.idle(t)
		})
	}
}
