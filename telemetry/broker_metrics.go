package telemetry

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// Worker states of gaterpc_broker_workers, as in broker.ServiceStats.
var workerStates = []string{"idle", "busy", "full"}

var (
	descQueued = prometheus.NewDesc("gaterpc_broker_requests_queued",
		"Requests waiting for a worker, by service.", []string{labelService}, nil)
	descOldest = prometheus.NewDesc("gaterpc_broker_oldest_request_age_seconds",
		"Age of the oldest request waiting for a worker, by service (0 when none).", []string{labelService}, nil)
	descInflight = prometheus.NewDesc("gaterpc_broker_inflight_requests",
		"Requests running on workers, by service.", []string{labelService}, nil)
	descWorkers = prometheus.NewDesc("gaterpc_broker_workers",
		"Live workers by service and state (idle: nothing in flight, busy: some capacity used, full: no capacity left).",
		[]string{labelService, labelState}, nil)
	descCapacity = prometheus.NewDesc("gaterpc_broker_worker_capacity",
		"Total announced capacity of the live workers of a service.", []string{labelService}, nil)
	descDispatch = prometheus.NewDesc("gaterpc_broker_dispatch_total",
		"Requests by dispatch outcome (dispatched, expired, timeout, rejected_full, no_service, cancelled, worker_lost, shutdown, refused, internal).",
		[]string{labelOutcome}, nil)
	descHBSent = prometheus.NewDesc("gaterpc_broker_heartbeats_sent_total",
		"Heartbeats sent by the broker, by peer kind.", []string{labelPeer}, nil)
	descHBRecv = prometheus.NewDesc("gaterpc_broker_heartbeats_received_total",
		"Heartbeats received by the broker, by peer kind (client = keepalive requests).", []string{labelPeer}, nil)
	descExpire = prometheus.NewDesc("gaterpc_broker_worker_expirations_total",
		"Workers forgotten by the broker, by reason (heartbeat, disconnect, duplicate_ready, protocol, shutdown).",
		[]string{labelReason}, nil)
	descDropped = prometheus.NewDesc("gaterpc_broker_messages_dropped_total",
		"Inbound messages dropped by the broker, by socket and reason.", []string{labelSocket, labelReason}, nil)
	descLiveWorkers = prometheus.NewDesc("gaterpc_broker_live_workers",
		"Registered live workers, all services.", nil, nil)
	descLiveRequests = prometheus.NewDesc("gaterpc_broker_live_requests",
		"Live requests of worker services: queued, assigned or in flight.", nil, nil)
	descStalled = prometheus.NewDesc("gaterpc_broker_stalled_workers",
		"Live workers silent for more than a heartbeat interval, by service: they get no new work until they speak again.", []string{labelService}, nil)
	descPruned = prometheus.NewDesc("gaterpc_broker_services_pruned_total",
		"Services forgotten after their last worker had been gone for the prune interval.", nil, nil)
	descBufMsgs = prometheus.NewDesc("gaterpc_broker_peer_buffer_messages",
		"Messages the broker holds for peers whose pipe is full (WithPeerBuffer).", nil, nil)
	descBufBytes = prometheus.NewDesc("gaterpc_broker_peer_buffer_bytes",
		"Bytes of the messages the broker holds for peers whose pipe is full.", nil, nil)
	descBufPeak = prometheus.NewDesc("gaterpc_broker_client_buffer_peak_bytes",
		"The most bytes one client's overflow queue has held since the broker started; flow control keeps it within the client's open windows.", nil, nil)
)

// BrokerCollector is a prometheus.Collector that takes a broker Stats
// snapshot at scrape time and exports it as const metrics. Service label
// values are bounded (WithMaxServices): services beyond the bound are
// summed into service="_OTHER". It is safe for concurrent use.
type BrokerCollector struct {
	src      interface{ Stats() broker.Stats }
	services *labelSet
	keys     *labelSet // outcome, reason and socket values
}

var _ prometheus.Collector = (*BrokerCollector)(nil)

// NewBrokerCollector returns a collector over src (normally a
// *broker.Broker); the caller registers it. Stats is called once per
// scrape, so it must not block for long.
func NewBrokerCollector(src interface{ Stats() broker.Stats }, opts ...Option) *BrokerCollector {
	c := newConfig(opts)
	return &BrokerCollector{src: src, services: newLabelSet(nil, c.maxServices), keys: newLabelSet(nil, 256)}
}

// Describe sends the fixed descriptors.
func (c *BrokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descOldest, descInflight, descWorkers, descCapacity,
		descDispatch, descHBSent, descHBRecv, descExpire, descDropped, descLiveWorkers, descLiveRequests,
		descStalled, descPruned, descBufMsgs, descBufBytes, descBufPeak} {
		ch <- d
	}
}

type serviceSum struct {
	queued, inflight, capacity, stalled int
	oldest                              time.Duration
	workers                             [3]int
}

// Collect takes a snapshot and sends the metrics.
func (c *BrokerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	sums := make(map[string]*serviceSum, len(s.Services))
	var order []string
	for _, svc := range s.Services {
		name := c.services.lookup(svc.Name)
		sum := sums[name]
		if sum == nil {
			sum = &serviceSum{}
			sums[name] = sum
			order = append(order, name)
		}
		sum.queued += svc.Queued
		sum.inflight += svc.InFlight
		sum.capacity += svc.Capacity
		sum.stalled += svc.Stalled
		sum.oldest = max(sum.oldest, svc.OldestQueue)
		for i, st := range workerStates {
			sum.workers[i] += svc.Workers[st]
		}
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	for _, name := range order {
		sum := sums[name]
		gauge(descQueued, float64(sum.queued), name)
		gauge(descOldest, sum.oldest.Seconds(), name)
		gauge(descInflight, float64(sum.inflight), name)
		gauge(descCapacity, float64(sum.capacity), name)
		gauge(descStalled, float64(sum.stalled), name)
		for i, st := range workerStates {
			gauge(descWorkers, float64(sum.workers[i]), name, st)
		}
	}
	for k, v := range withZeros(c.fold(s.Outcomes), dispatchOutcomes) {
		counter(descDispatch, float64(v), k)
	}
	counter(descHBSent, float64(s.HeartbeatsSent), "worker")
	counter(descHBRecv, float64(s.HeartbeatsReceived), "worker")
	counter(descHBRecv, float64(s.ClientKeepalives), "client")
	for k, v := range withZeros(c.fold(s.Expirations), goneReasons) {
		counter(descExpire, float64(v), k)
	}
	drops := make(map[[2]string]uint64, len(s.Drops))
	for k, v := range s.Drops {
		sock, reason, ok := strings.Cut(k, "/")
		if !ok {
			sock, reason = "unknown", k
		}
		drops[[2]string{c.keys.lookup(sock), c.keys.lookup(reason)}] += v
	}
	for k, v := range drops {
		counter(descDropped, float64(v), k[0], k[1])
	}
	gauge(descLiveWorkers, float64(s.Workers))
	gauge(descLiveRequests, float64(s.Requests))
	gauge(descBufMsgs, float64(s.Buffered))
	gauge(descBufBytes, float64(s.BufferedBytes))
	gauge(descBufPeak, float64(s.MaxClientBuffered))
	counter(descPruned, float64(s.ServicesPruned))
}

// dispatchOutcomes are the keys of broker.Stats.Outcomes.
var dispatchOutcomes = []string{"dispatched", broker.OutcomeExpired, broker.OutcomeTimeout, broker.OutcomeFull,
	broker.OutcomeNoService, broker.OutcomeCancelled, broker.OutcomeWorkerLost, broker.OutcomeShutdown,
	broker.OutcomeRefused, broker.OutcomeInternalErr}

// goneReasons are the broker.Gone* values: every one is exported from the
// first scrape, at 0 until it happens, so that increase() and alerts see
// the first event.
var goneReasons = []string{broker.GoneHeartbeat, broker.GoneDisconnect, broker.GoneDuplicateReady, broker.GoneProtocol, broker.GoneShutdown}

// withZeros adds the known keys missing from m with the value 0.
func withZeros(m map[string]uint64, known []string) map[string]uint64 {
	for _, k := range known {
		if _, ok := m[k]; !ok {
			m[k] = 0
		}
	}
	return m
}

// fold bounds the keys of a counter map, summing the overflow into _OTHER.
func (c *BrokerCollector) fold(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[c.keys.lookup(k)] += v
	}
	return out
}

// Broker request outcomes accepted as label values of
// gaterpc_broker_request_duration_seconds; any other value becomes _OTHER.
var brokerOutcomes = [...]string{
	broker.OutcomeOK, broker.OutcomeError, broker.OutcomeExpired, broker.OutcomeTimeout,
	broker.OutcomeFull, broker.OutcomeNoService, broker.OutcomeCancelled, broker.OutcomeWorkerLost,
	broker.OutcomeShutdown, broker.OutcomeRefused, broker.OutcomeInternalErr,
}

// BrokerMetrics records the broker's latency histograms from the broker's
// events: gaterpc_broker_queue_wait_seconds{service} and
// gaterpc_broker_request_duration_seconds{service, outcome}. It is a
// broker.Observer that watches events only (install it with
// broker.WithObserver, beside BrokerObserver); its methods are cheap,
// allocate nothing once a series exists, and never block. It is safe for
// concurrent use.
type BrokerMetrics struct {
	cfg       *config
	services  *labelSet
	queueWait *prometheus.HistogramVec
	duration  *prometheus.HistogramVec

	// The children of each admitted service, by its name: one lock-free
	// map lookup per event (see cowMap), no label hashing. Bounded by
	// WithMaxServices; _OTHER has its own.
	series cowMap[string, *brokerSeries]
	other  *brokerSeries
}

// brokerSeries is the children of one service label.
type brokerSeries struct {
	m     *BrokerMetrics
	label string
	wait  lazyObserver
	// durations by outcome, in the order of brokerOutcomes, then _OTHER;
	// made at first use so that only outcomes that happened are exported.
	durations [len(brokerOutcomes) + 1]atomic.Pointer[prometheus.Observer]
}

// duration returns the request duration child of outcome.
func (s *brokerSeries) duration(outcome string) prometheus.Observer {
	i := outcomeIndex(outcome)
	if p := s.durations[i].Load(); p != nil {
		return *p
	}
	label := OtherMethod
	if i < len(brokerOutcomes) {
		label = brokerOutcomes[i]
	}
	o := s.m.duration.WithLabelValues(s.label, label)
	s.durations[i].Store(&o) // a racing store holds the same child
	return o
}

// outcomeIndex is the index of outcome in brokerOutcomes, or
// len(brokerOutcomes) for any other value.
func outcomeIndex(outcome string) int {
	for i := range brokerOutcomes {
		if brokerOutcomes[i] == outcome {
			return i
		}
	}
	return len(brokerOutcomes)
}

// NewBrokerMetrics creates the broker histograms and registers them with
// reg (nil: not registered). Options: WithBuckets, WithNativeHistograms,
// WithMaxServices.
func NewBrokerMetrics(reg prometheus.Registerer, opts ...Option) (*BrokerMetrics, error) {
	c := newConfig(opts)
	m := &BrokerMetrics{
		cfg:      c,
		services: newLabelSet(nil, c.maxServices),
		queueWait: prometheus.NewHistogramVec(histogramOpts(c, "gaterpc_broker_queue_wait_seconds",
			"Time requests waited in the broker for a worker, by service.", c.buckets), []string{labelService}),
		duration: prometheus.NewHistogramVec(histogramOpts(c, "gaterpc_broker_request_duration_seconds",
			"Time from a request's arrival at the broker to its end, by service and outcome.", c.buckets),
			[]string{labelService, labelOutcome}),
	}
	m.other = m.newSeries(OtherMethod)
	if err := register(reg, m.queueWait, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *BrokerMetrics) newSeries(label string) *brokerSeries {
	s := &brokerSeries{m: m, label: label}
	s.wait.vec, s.wait.label = m.queueWait, label
	return s
}

// admit returns the series of service, admitting it to the label values.
func (m *BrokerMetrics) admit(service string) *brokerSeries {
	if s, ok := m.series.load(service); ok {
		return s
	}
	label := m.services.lookup(service)
	if label == OtherMethod {
		return m.other
	}
	s, _ := m.series.store(label, m.newSeries(label), m.services.max)
	return s
}

// known returns the series of service if it was admitted, else _OTHER's.
func (m *BrokerMetrics) known(service string) *brokerSeries {
	if s, ok := m.series.load(service); ok {
		return s
	}
	if m.services.peek(service) == OtherMethod {
		return m.other
	}
	return m.admit(service)
}

// OnWorkerReady admits service to the service label values: only
// services that have (had) a registered worker or a dispatched request
// get their own label, everything else is "_OTHER" from the start, so
// calls to junk service names cannot take the places of real services.
func (m *BrokerMetrics) OnWorkerReady(service string) { m.admit(service) }

// OnDispatch observes the queue wait of a request sent to a worker (and
// admits its service, see OnWorkerReady).
func (m *BrokerMetrics) OnDispatch(service string, wait time.Duration) {
	m.admit(service).wait.get().Observe(wait.Seconds())
}

// OnFinish observes the duration of a finished request with one of the
// broker.Outcome* values.
func (m *BrokerMetrics) OnFinish(service, outcome string, dur time.Duration) {
	m.known(service).duration(outcome).Observe(dur.Seconds())
}

// Observe implements broker.Observer: BrokerMetrics follows no request
// of its own, only the events.
func (m *BrokerMetrics) Observe(*gate.Request, time.Time) broker.RequestObserver { return nil }

// Event implements broker.EventObserver: EventWorkerReady,
// EventDispatched and EventFinished feed OnWorkerReady, OnDispatch and
// OnFinish.
func (m *BrokerMetrics) Event(ev *broker.Event) {
	switch ev.Kind {
	case broker.EventWorkerReady:
		m.OnWorkerReady(ev.Service)
	case broker.EventDispatched:
		m.OnDispatch(ev.Service, ev.Wait)
	case broker.EventFinished:
		m.OnFinish(ev.Service, ev.Outcome, ev.Wait)
	}
}
