package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// TestRetryTelemetry: each attempt of a retried idempotent call is a
// client span, the retries carry gaterpc.attempt, and
// gaterpc_client_retries_total counts them by outcome.
func TestRetryTelemetry(t *testing.T) {
	h := gatetest.StartBroker(t)
	sr, tp := newRecorder(t)
	reg := prometheus.NewPedanticRegistry()
	cm, err := NewClientMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(h.Ctx),
		gate.WithMiddleware(Tracing(WithTracerProvider(tp), WithPropagators(testProp)), cm.Middleware()),
		gate.WithRetry(gate.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, BudgetTokens: 100}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No worker: every attempt gets ServiceUnAvailableError.
	if _, err := c.Call(gate.Idempotent(ctx), "Nobody.echo", 1); !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("Call = %v, want ErrNoService", err)
	}
	spans := sr.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d client spans, want 3 (one per attempt)", len(spans))
	}
	for i, s := range spans {
		var got int64
		for _, a := range s.Attributes() {
			if a.Key == AttrAttempt {
				got = a.Value.AsInt64()
			}
		}
		want := int64(i + 1)
		if i == 0 {
			want = 0 // the first attempt carries no attempt attribute
		}
		if got != want {
			t.Errorf("span %d: %s = %d, want %d", i, AttrAttempt, got, want)
		}
	}
	if n := testutil.ToFloat64(cm.retries.WithLabelValues("Nobody/echo", "UNAVAILABLE")); n != 2 {
		if n2 := testutil.ToFloat64(cm.retries.WithLabelValues(OtherMethod, "UNAVAILABLE")); n2 != 2 {
			t.Fatalf("gaterpc_client_retries_total = %v (or %v under %s), want 2", n, n2, OtherMethod)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "gaterpc_client_retries_total"); err != nil || n != 1 {
		t.Fatalf("GatherAndCount = %d, %v; want one series", n, err)
	}
}
