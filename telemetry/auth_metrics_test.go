package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gaterpc/gate/broker"
)

func TestBrokerAuthCollector(t *testing.T) {
	src := &stubStats{s: broker.Stats{AuthFailures: map[string]uint64{
		"backend/unknown_key":         3,
		"frontend/mechanism":          2,
		"backend/service_not_allowed": 1,
		"backend/bogus":               4, // unknown reason: _OTHER
	}}}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewBrokerAuthCollector(src)); err != nil {
		t.Fatalf("Register: %v", err)
	}
	want := `
# HELP gaterpc_broker_auth_failures_total Peers denied by the broker's CURVE authentication, by socket and reason (unknown_key, mechanism, crypto, handshake, service_not_allowed, key_mismatch).
# TYPE gaterpc_broker_auth_failures_total counter
gaterpc_broker_auth_failures_total{reason="_OTHER",socket="backend"} 4
gaterpc_broker_auth_failures_total{reason="crypto",socket="backend"} 0
gaterpc_broker_auth_failures_total{reason="crypto",socket="frontend"} 0
gaterpc_broker_auth_failures_total{reason="handshake",socket="backend"} 0
gaterpc_broker_auth_failures_total{reason="handshake",socket="frontend"} 0
gaterpc_broker_auth_failures_total{reason="key_mismatch",socket="backend"} 0
gaterpc_broker_auth_failures_total{reason="key_mismatch",socket="frontend"} 0
gaterpc_broker_auth_failures_total{reason="mechanism",socket="backend"} 0
gaterpc_broker_auth_failures_total{reason="mechanism",socket="frontend"} 2
gaterpc_broker_auth_failures_total{reason="service_not_allowed",socket="backend"} 1
gaterpc_broker_auth_failures_total{reason="service_not_allowed",socket="frontend"} 0
gaterpc_broker_auth_failures_total{reason="unknown_key",socket="backend"} 3
gaterpc_broker_auth_failures_total{reason="unknown_key",socket="frontend"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gaterpc_broker_auth_failures_total"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("GatherAndLint = %v, %v", problems, err)
	}
}
