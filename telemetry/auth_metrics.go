package telemetry

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gaterpc/gate/broker"
)

// Broker sockets, the socket label values of
// gaterpc_broker_auth_failures_total.
var brokerSockets = []string{"frontend", "backend"}

var descAuthFailures = prometheus.NewDesc("gaterpc_broker_auth_failures_total",
	"Peers denied by the broker's CURVE authentication, by socket and reason (unknown_key, mechanism, crypto, handshake, service_not_allowed, key_mismatch).",
	[]string{labelSocket, labelReason}, nil)

// BrokerAuthCollector is a prometheus.Collector that exports the broker's
// authentication failures (broker.Stats.AuthFailures) as
// gaterpc_broker_auth_failures_total{socket, reason}. Every known socket
// and reason is exported, at 0 until a peer is denied, so that rate() and
// alerts work from the first scrape. Unknown values become _OTHER. It is
// safe for concurrent use.
type BrokerAuthCollector struct {
	src     interface{ Stats() broker.Stats }
	sockets *labelSet
	reasons *labelSet
}

var _ prometheus.Collector = (*BrokerAuthCollector)(nil)

// NewBrokerAuthCollector returns a collector over src (normally a
// *broker.Broker); the caller registers it. Stats is called once per
// scrape.
func NewBrokerAuthCollector(src interface{ Stats() broker.Stats }) *BrokerAuthCollector {
	return &BrokerAuthCollector{src: src, sockets: newLabelSet(brokerSockets, 0), reasons: newLabelSet(broker.AuthFailureReasons, 0)}
}

// Describe sends the descriptor.
func (c *BrokerAuthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descAuthFailures }

// Collect takes a snapshot and sends the counters.
func (c *BrokerAuthCollector) Collect(ch chan<- prometheus.Metric) {
	counts := make(map[[2]string]uint64, len(brokerSockets)*len(broker.AuthFailureReasons))
	for _, s := range brokerSockets {
		for _, r := range broker.AuthFailureReasons {
			counts[[2]string{s, r}] = 0
		}
	}
	for k, v := range c.src.Stats().AuthFailures {
		sock, reason, _ := strings.Cut(k, "/")
		counts[[2]string{c.sockets.lookup(sock), c.reasons.lookup(reason)}] += v
	}
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(v), k[0], k[1])
	}
}
