package dashboards

// MetricType is the Prometheus type of a metric family.
type MetricType string

// Metric types.
const (
	Counter   MetricType = "counter"
	Gauge     MetricType = "gauge"
	Histogram MetricType = "histogram"
)

// Metric is one metric family the dashboards and alert rules query.
type Metric struct {
	Name   string
	Type   MetricType
	Labels []string // besides job and instance
}

// Metrics is every metric family the dashboards and deploy/prometheus/alerts.yml
// query: the contract with package telemetry (names are fixed; histograms
// expose _bucket, _sum and _count). A test fails when a query names a metric
// that is not listed here.
var Metrics = []Metric{
	{"rpc_client_call_duration_seconds", Histogram, []string{"rpc_method", "rpc_response_status_code"}},
	{"rpc_server_call_duration_seconds", Histogram, []string{"rpc_method", "rpc_response_status_code"}},
	{"rpc_client_request_size_bytes", Histogram, []string{"rpc_method"}},
	{"rpc_client_response_size_bytes", Histogram, []string{"rpc_method"}},
	{"rpc_server_request_size_bytes", Histogram, []string{"rpc_method"}},
	{"rpc_server_response_size_bytes", Histogram, []string{"rpc_method"}},

	{"gaterpc_broker_requests_queued", Gauge, []string{"service"}},
	{"gaterpc_broker_oldest_request_age_seconds", Gauge, []string{"service"}},
	{"gaterpc_broker_inflight_requests", Gauge, []string{"service"}},
	{"gaterpc_broker_workers", Gauge, []string{"service", "state"}},
	{"gaterpc_broker_worker_capacity", Gauge, []string{"service"}},
	{"gaterpc_broker_dispatch_total", Counter, []string{"outcome"}},
	{"gaterpc_broker_heartbeats_sent_total", Counter, []string{"peer"}},
	{"gaterpc_broker_heartbeats_received_total", Counter, []string{"peer"}},
	{"gaterpc_broker_worker_expirations_total", Counter, []string{"reason"}},
	{"gaterpc_broker_messages_dropped_total", Counter, []string{"socket", "reason"}},
	{"gaterpc_broker_queue_wait_seconds", Histogram, []string{"service"}},
	{"gaterpc_broker_request_duration_seconds", Histogram, []string{"service", "outcome"}},

	{"gaterpc_worker_inflight_requests", Gauge, []string{"service"}},
	{"gaterpc_worker_executor_queue_depth", Gauge, []string{"service", "executor"}},
	{"gaterpc_worker_stream_messages_total", Counter, []string{"rpc_method"}},
	{"gaterpc_worker_huge_data_bytes_total", Counter, []string{"rpc_method", "kind"}},

	{"gaterpc_log_records_dropped_total", Counter, nil},
	{"gaterpc_build_info", Gauge, []string{"version", "revision", "goversion", "libzmq_version", "role"}},

	// Standard collectors and Prometheus itself.
	{"go_goroutines", Gauge, nil},
	{"go_memstats_heap_inuse_bytes", Gauge, nil},
	{"go_gc_duration_seconds", Histogram, nil}, // a summary: _sum and _count only
	{"process_resident_memory_bytes", Gauge, nil},
	{"process_cpu_seconds_total", Counter, nil},
	{"up", Gauge, nil},
}

// SeriesNames returns every series name a query may select: gauges and
// counters by name, histograms by _bucket, _sum and _count.
func SeriesNames() map[string]bool {
	m := map[string]bool{}
	for _, mt := range Metrics {
		if mt.Type == Histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				m[mt.Name+s] = true
			}
			continue
		}
		m[mt.Name] = true
	}
	return m
}
