package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
)

// TestLinkFaults breaks the link between the client and the broker, or
// between the broker and the worker, through a TCP proxy, while a call is
// in flight. A cut link is seen when the connection ends; a stalled one
// (connections open, no bytes) when the peer's heartbeats stop (3
// intervals). Either way the call fails with the error of the hop that
// broke, and the service answers again once the link is back.
func TestLinkFaults(t *testing.T) {
	const callBudget = 3 * time.Second
	cases := []struct {
		name   string
		worker bool // the broker↔worker link, else client↔broker
		stall  bool
		// want checks the call's result; nil error means the call survives.
		want     func(error) bool
		wantName string
		bound    float64 // intervals until the error
	}{
		{"client-cut", false, false, func(err error) bool { return errors.Is(err, gate.ErrBrokerLost) }, "ErrBrokerLost", 3},
		{"client-stall", false, true, func(err error) bool { return errors.Is(err, gate.ErrBrokerLost) }, "ErrBrokerLost", 8},
		// libzmq reconnects the worker at once. When the broker's ROUTER
		// has let go of the old connection first, the worker keeps its
		// routing id, the call goes on and its reply arrives over the new
		// connection; otherwise the new connection gets another id, the
		// broker drops the old worker, and the call fails with
		// WorkerLostError. Either way it is not lost silently.
		{"worker-cut", true, false, func(err error) bool { return err == nil || isClass(err, "WorkerLostError") },
			"the reply or WorkerLostError", 8},
		{"worker-stall", true, true, func(err error) bool { return isClass(err, "WorkerLostError") }, "WorkerLostError", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t)
			var p *proxy
			var c *gate.Client
			if tc.worker {
				p = startProxy(t, b.back)
				startWorker(t, p.endpoint())
				c = newClient(t, tcp(b.front))
			} else {
				p = startProxy(t, b.front)
				startWorker(t, tcp(b.back))
				c = newClient(t, p.endpoint())
			}
			waitService(t, c)

			ctx, cancel := context.WithTimeout(context.Background(), callBudget)
			defer cancel()
			seconds := 60.0 // longer than the budget: only a fault ends it early
			if tc.name == "worker-cut" {
				seconds = 1.0 // the call may survive the cut
			}
			done := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, "demo.sleep", seconds)
				done <- err
			}()
			b.waitMetric(t, "gaterpc_broker_inflight_requests", func(v float64) bool { return v == 1 })
			brokeAt := time.Now()
			if tc.stall {
				p.stall()
			} else {
				p.cut()
			}
			err := <-done
			d := time.Since(brokeAt)
			t.Logf("%s: call ended after %v (%.1f intervals): %v", tc.name, d.Round(time.Millisecond), intervals(d), err)
			if !tc.want(err) {
				t.Errorf("call = %v, want %s", err, tc.wantName)
			}
			if err != nil && intervals(d) > tc.bound {
				t.Errorf("error after %.1f intervals, want at most %.0f", intervals(d), tc.bound)
			}
			fixedAt := time.Now()
			if tc.stall {
				p.unstall()
			}
			back := waitService(t, c).Sub(fixedAt)
			t.Logf("%s: service answers again %v (%.1f intervals) after the link is back", tc.name, back.Round(time.Millisecond), intervals(back))
			if intervals(back) > recoveryBound {
				t.Errorf("service back after %.1f intervals, want at most %d", intervals(back), recoveryBound)
			}
			// A request whose client lost its connection cannot be
			// cancelled by it (the client comes back under a new routing
			// id): it ends at its budget.
			b.idle(t)
			idle := time.Since(brokeAt)
			t.Logf("%s: broker idle %v after the fault", tc.name, idle.Round(time.Millisecond))
			if idle > callBudget+10*hb {
				t.Errorf("broker idle %v after the fault, want within the call's budget %v + 10 intervals", idle, callBudget)
			}
			if n := b.metric(t, "gaterpc_broker_live_workers"); n != 1 {
				t.Errorf("broker counts %v live workers, want 1", n)
			}
		})
	}
}
