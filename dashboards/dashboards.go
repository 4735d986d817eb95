package dashboards

import "fmt"

// File pairs a generated dashboard with the name of its committed JSON file.
type File struct {
	Name      string // file name inside dashboards/, e.g. "overview.json"
	Dashboard *Dashboard
}

// All returns every gate dashboard in a fixed order. Each call builds fresh
// values, so callers may modify them.
func All() []File {
	return []File{
		{Name: "overview.json", Dashboard: Overview()},
		{Name: "broker.json", Dashboard: Broker()},
		{Name: "workers.json", Dashboard: Workers()},
	}
}

// Label selectors shared by the queries. Variables are multi-value regexes.
const (
	selJob     = `job=~"$job", instance=~"$instance"`
	selService = selJob + `, service=~"$service"`
	selMethod  = selJob + `, rpc_method=~"$method"`
)

func jobVar(selector, what string) *Variable {
	return labelVar("job", "Job", "Prometheus scrape job of the "+what+".", selector, "job", ".*")
}

func instanceVar(metric string) *Variable {
	return labelVar("instance", "Instance", "Scrape target (host:port) within the selected jobs.",
		metric+`{job=~"$job"}`, "instance", ".*")
}

func methodVar(sel string) *Variable {
	// No allValue: "All" expands to the options, which are already filtered
	// by $service, so picking a service narrows every method query too.
	return labelVar("method", "Method", "RPC method (Service/method) served by the selected services.",
		fmt.Sprintf(`rpc_server_call_duration_seconds_count{%s}`, sel), "rpc_method", "")
}

// errorRatio is failed calls over all calls of a _seconds histogram, by the
// given labels. The "or ... * 0" arm turns "no failures" into 0 instead of
// no data.
func errorRatio(metric, sel, by string) string {
	all := fmt.Sprintf("sum by (%s) (rate(%s_count{%s}[$__rate_interval]))", by, metric, sel)
	if by == "" {
		all = fmt.Sprintf("sum(rate(%s_count{%s}[$__rate_interval]))", metric, sel)
	}
	failed := fmt.Sprintf("sum by (%s) (rate(%s_count{%s, rpc_response_status_code!=\"OK\"}[$__rate_interval]))", by, metric, sel)
	if by == "" {
		failed = fmt.Sprintf("sum(rate(%s_count{%s, rpc_response_status_code!=\"OK\"}[$__rate_interval]))", metric, sel)
	}
	return fmt.Sprintf("(%s or %s * 0) / %s", failed, all, all)
}

// Overview is the landing dashboard: RED per service and method, capacity
// (workers, queue, oldest queued age) and build info.
func Overview() *Dashboard {
	b := newBoard("gate-overview", "gate / Overview",
		"RED metrics per service and method, broker capacity and build info for a gate deployment.",
		jobVar("gaterpc_build_info", "gate processes (broker, workers, clients)"),
		instanceVar("gaterpc_build_info"),
		labelVar("service", "Service", "Service name as registered with the broker.",
			"gaterpc_broker_workers", "service", ".*"),
		methodVar(`job=~"$job", rpc_method=~"${service}/.*"`),
	)
	srv := "rpc_server_call_duration_seconds"

	b.row("Traffic (worker side)")
	b.add(6, 5, stat("Request rate", "Calls per second completed by workers for the selected methods (all status codes).", "reqps",
		q(fmt.Sprintf("sum(rate(%s_count{%s}[$__rate_interval]))", srv, selMethod), "calls/s")))
	b.add(6, 5, stat("Error ratio", "Share of worker calls that ended with a status other than OK. The alert GateErrorRatioHigh fires above 5% for 5m.", "percentunit",
		q(errorRatio(srv, selMethod, ""), "error ratio"), 0.01, 0.05))
	b.add(6, 5, stat("p99 handler latency", "99th percentile of worker handler duration over all selected methods.", "s",
		qx(quantile("0.99", srv, selMethod, ""), "p99"), 0.5, 2))
	b.add(6, 5, stat("Workers", "Workers currently registered with the broker for the selected services (idle + busy + full). The alert GateWorkerPoolEmpty fires when a service has none.", "short",
		q(`sum(gaterpc_broker_workers{`+selService+`})`, "workers")))
	b.add(12, 8, timeseries("Requests by method and status", "Calls per second completed by workers, by rpc_method and rpc_response_status_code.", "reqps",
		q(fmt.Sprintf("sum by (rpc_method, rpc_response_status_code) (rate(%s_count{%s}[$__rate_interval]))", srv, selMethod),
			"{{rpc_method}} {{rpc_response_status_code}}")))
	b.add(12, 8, timeseries("Error ratio by method", "Share of worker calls per method that did not end OK (0 when there were calls and no failures).", "percentunit",
		q(errorRatio(srv, selMethod, "rpc_method"), "{{rpc_method}}")))
	b.add(12, 8, latency("Handler latency by method", "p50/p95/p99 of the worker handler duration per method. Exemplar dots link to the trace in Jaeger.",
		srv, selMethod, "rpc_method"))
	b.add(12, 8, latency("Client-observed latency by method", "p50/p95/p99 of the call duration measured by clients (gatectl, traffic generators), including broker queueing and network. Exemplars link to traces.",
		"rpc_client_call_duration_seconds", selMethod, "rpc_method"))

	b.row("Broker")
	b.add(12, 8, timeseries("Broker requests by service and outcome", "Requests per second the broker finished, by service and outcome (dispatched, expired, rejected_full, ...).", "reqps",
		q(`sum by (service, outcome) (rate(gaterpc_broker_request_duration_seconds_count{`+selService+`}[$__rate_interval]))`, "{{service}} {{outcome}}")))
	b.add(12, 8, latency("Broker end-to-end latency by service", "p50/p95/p99 from the broker receiving a request to relaying its final reply, per service. Exemplars link to traces.",
		"gaterpc_broker_request_duration_seconds", selService, "service"))

	b.row("Capacity")
	b.add(6, 8, timeseries("Workers by state", "Registered workers per service and state: idle (no work), busy (some capacity used), full (at capacity).", "short",
		q(`sum by (service, state) (gaterpc_broker_workers{`+selService+`})`, "{{service}} {{state}}")))
	b.add(6, 8, timeseries("Queued requests", "Requests waiting in the broker for a free worker, per service.", "short",
		q(`sum by (service) (gaterpc_broker_requests_queued{`+selService+`})`, "{{service}}")))
	b.add(6, 8, timeseries("Oldest queued request age", "Age of the oldest request still queued, per service. The alert GateOldestQueuedAgeHigh fires above 10s for 2m.", "s",
		q(`max by (service) (gaterpc_broker_oldest_request_age_seconds{`+selService+`})`, "{{service}}")))
	b.add(6, 8, timeseries("Scrape targets up", "Scrape targets that answered the last scrape, per job (1 per healthy process).", "short",
		q(`sum by (job) (up{`+selJob+`})`, "{{job}}")))

	b.row("Build")
	b.add(24, 6, table("Build info", "Version, Go version, libzmq version and role of every gate process (gaterpc_build_info).",
		q(`gaterpc_build_info{`+selJob+`}`, ""), "Time", "Value", "__name__"))
	return b.done()
}

// Broker is the broker's dashboard: queues, dispatch, heartbeats, failures
// and the Go runtime.
func Broker() *Dashboard {
	b := newBoard("gate-broker", "gate / Broker",
		"Broker internals: queue depth and wait, dispatch outcomes, heartbeats, expirations, drops and the Go runtime.",
		jobVar("gaterpc_broker_heartbeats_sent_total", "broker"),
		instanceVar("gaterpc_broker_heartbeats_sent_total"),
		labelVar("service", "Service", "Service name as registered with the broker.",
			`gaterpc_broker_workers{job=~"$job", instance=~"$instance"}`, "service", ".*"),
	)

	b.row("Queue")
	b.add(8, 8, timeseries("Queued requests", "Requests waiting for a free worker, per service.", "short",
		q(`sum by (service) (gaterpc_broker_requests_queued{`+selService+`})`, "{{service}}")))
	b.add(8, 8, timeseries("Oldest queued request age", "Age of the oldest request still queued, per service. Alert GateOldestQueuedAgeHigh: > 10s for 2m.", "s",
		q(`max by (service) (gaterpc_broker_oldest_request_age_seconds{`+selService+`})`, "{{service}}")))
	b.add(8, 8, timeseries("In-flight requests", "Requests dispatched to a worker and not yet finished, per service.", "short",
		q(`sum by (service) (gaterpc_broker_inflight_requests{`+selService+`})`, "{{service}}")))
	b.add(12, 9, heatmap("Queue wait", "Distribution of time requests spent queued in the broker before dispatch (count per bucket per interval).",
		"gaterpc_broker_queue_wait_seconds", selService))
	b.add(12, 9, latency("Queue wait quantiles", "p50/p95/p99 of the time requests spent queued before dispatch. Exemplars link to traces.",
		"gaterpc_broker_queue_wait_seconds", selService, ""))

	b.row("Workers")
	b.add(8, 8, timeseries("Workers by state", "Registered workers per service and state (idle, busy, full). Alert GateWorkerPoolEmpty: a service with no workers for 1m.", "short",
		q(`sum by (service, state) (gaterpc_broker_workers{`+selService+`})`, "{{service}} {{state}}")))
	b.add(8, 8, timeseries("Capacity and in-flight", "Total concurrent-request capacity advertised by a service's workers, against requests in flight.", "short",
		q(`sum by (service) (gaterpc_broker_worker_capacity{`+selService+`})`, "capacity {{service}}"),
		q(`sum by (service) (gaterpc_broker_inflight_requests{`+selService+`})`, "in-flight {{service}}")))
	b.add(8, 8, timeseries("Utilisation", "In-flight requests over advertised capacity, per service. Near 100% means requests start to queue.", "percentunit",
		q(`sum by (service) (gaterpc_broker_inflight_requests{`+selService+`}) / sum by (service) (gaterpc_broker_worker_capacity{`+selService+`})`, "{{service}}")))

	b.row("Dispatch")
	b.add(12, 8, timeseries("Dispatch outcomes", "What the broker did with each request per second: dispatched, expired in queue, rejected_full, no_service, cancelled, worker_lost.", "reqps",
		q(`sum by (outcome) (rate(gaterpc_broker_dispatch_total{`+selJob+`}[$__rate_interval]))`, "{{outcome}}")))
	b.add(12, 8, latency("Request duration by service", "p50/p95/p99 from request arrival to final reply, per service. Exemplars link to traces.",
		"gaterpc_broker_request_duration_seconds", selService, "service"))

	b.row("Heartbeats and failures")
	b.add(8, 8, timeseries("Heartbeats", "Heartbeats per second sent to and received from workers and clients. A drop means peers went quiet.", "ops",
		q(`sum by (peer) (rate(gaterpc_broker_heartbeats_sent_total{`+selJob+`}[$__rate_interval]))`, "sent to {{peer}}"),
		q(`sum by (peer) (rate(gaterpc_broker_heartbeats_received_total{`+selJob+`}[$__rate_interval]))`, "received from {{peer}}")))
	b.add(8, 8, timeseries("Worker expirations", "Workers the broker expired per interval, by reason (missed heartbeats, disconnect, ...). Alert GateHeartbeatExpirations fires on any in 5m.", "short",
		q(`sum by (reason) (increase(gaterpc_broker_worker_expirations_total{`+selJob+`}[$__rate_interval]))`, "{{reason}}")))
	b.add(8, 8, timeseries("Dropped messages", "Messages dropped per second, by socket and reason (malformed frame, full mailbox, unknown peer, ...).", "ops",
		q(`sum by (socket, reason) (rate(gaterpc_broker_messages_dropped_total{`+selJob+`}[$__rate_interval]))`, "{{socket}} {{reason}}")))

	runtimeRow(b)
	return b.done()
}

// Workers is the workers' dashboard: load, handler latency, payloads,
// streams, huge data and the Go runtime.
func Workers() *Dashboard {
	b := newBoard("gate-workers", "gate / Workers",
		"Worker processes: in-flight requests, executor queues, handler duration, payload sizes, streams and huge-data compression.",
		jobVar("gaterpc_worker_inflight_requests", "workers"),
		instanceVar("gaterpc_worker_inflight_requests"),
		labelVar("service", "Service", "Service the workers serve.",
			`gaterpc_worker_inflight_requests{job=~"$job", instance=~"$instance"}`, "service", ".*"),
		methodVar(`job=~"$job", instance=~"$instance", rpc_method=~"${service}/.*"`),
	)
	srv := "rpc_server_call_duration_seconds"

	b.row("Load")
	b.add(8, 8, timeseries("In-flight requests", "Requests each worker instance is executing right now, per service.", "short",
		q(`sum by (instance, service) (gaterpc_worker_inflight_requests{`+selService+`})`, "{{instance}} {{service}}")))
	b.add(8, 8, timeseries("Executor queue depth", "Tasks waiting for an executor (goroutine pool, process pool) per worker instance.", "short",
		q(`sum by (instance, executor) (gaterpc_worker_executor_queue_depth{`+selService+`})`, "{{instance}} {{executor}}")))
	b.add(8, 8, timeseries("Calls by method and status", "Calls per second finished by the workers, by method and status code.", "reqps",
		q(fmt.Sprintf("sum by (rpc_method, rpc_response_status_code) (rate(%s_count{%s}[$__rate_interval]))", srv, selMethod),
			"{{rpc_method}} {{rpc_response_status_code}}")))

	b.row("Handler duration")
	b.add(12, 9, latency("Handler duration by method", "p50/p95/p99 of the worker handler duration per method. Exemplars link to traces.",
		srv, selMethod, "rpc_method"))
	b.add(12, 9, heatmap("Handler duration distribution", "Distribution of worker handler duration for the selected methods (count per bucket per interval).",
		srv, selMethod))

	b.row("Payloads")
	b.add(12, 8, timeseries("Payload size p95", "95th percentile of request and response payload sizes as seen by the workers, per method.", "bytes",
		q(fmt.Sprintf("histogram_quantile(0.95, sum by (le, rpc_method) (rate(rpc_server_request_size_bytes_bucket{%s}[$__rate_interval])))", selMethod), "request {{rpc_method}}"),
		q(fmt.Sprintf("histogram_quantile(0.95, sum by (le, rpc_method) (rate(rpc_server_response_size_bytes_bucket{%s}[$__rate_interval])))", selMethod), "response {{rpc_method}}")))
	b.add(12, 8, timeseries("Payload throughput", "Request and response bytes per second through the workers, per method.", "Bps",
		q(fmt.Sprintf("sum by (rpc_method) (rate(rpc_server_request_size_bytes_sum{%s}[$__rate_interval]))", selMethod), "request {{rpc_method}}"),
		q(fmt.Sprintf("sum by (rpc_method) (rate(rpc_server_response_size_bytes_sum{%s}[$__rate_interval]))", selMethod), "response {{rpc_method}}")))

	b.row("Streams and huge data")
	b.add(8, 8, timeseries("Stream messages", "Stream items sent per second by streaming methods.", "ops",
		q(`sum by (rpc_method) (rate(gaterpc_worker_stream_messages_total{`+selMethod+`}[$__rate_interval]))`, "{{rpc_method}}")))
	b.add(8, 8, timeseries("Huge-data throughput", "Bytes per second of huge (chunked) replies before (raw) and after (compressed) compression.", "Bps",
		q(`sum by (rpc_method, kind) (rate(gaterpc_worker_huge_data_bytes_total{`+selMethod+`}[$__rate_interval]))`, "{{rpc_method}} {{kind}}")))
	b.add(8, 8, timeseries("Huge-data compression ratio", "Raw bytes over compressed bytes of huge replies, per method (higher is better; 1 means incompressible).", "suffix:×",
		q(`sum by (rpc_method) (rate(gaterpc_worker_huge_data_bytes_total{`+selMethod+`, kind="raw"}[$__rate_interval])) / sum by (rpc_method) (rate(gaterpc_worker_huge_data_bytes_total{`+selMethod+`, kind="compressed"}[$__rate_interval]))`, "{{rpc_method}}")))

	runtimeRow(b)
	return b.done()
}

// runtimeRow adds the Go runtime and process panels for the selected jobs.
func runtimeRow(b *board) {
	b.row("Go runtime and process")
	b.add(8, 8, timeseries("Goroutines", "Live goroutines per instance. Steady growth under steady load suggests a leak.", "short",
		q(`sum by (instance) (go_goroutines{`+selJob+`})`, "{{instance}}")))
	b.add(8, 8, timeseries("Memory", "Resident set size and Go heap in use per instance.", "bytes",
		q(`sum by (instance) (process_resident_memory_bytes{`+selJob+`})`, "RSS {{instance}}"),
		q(`sum by (instance) (go_memstats_heap_inuse_bytes{`+selJob+`})`, "heap in use {{instance}}")))
	b.add(8, 8, timeseries("CPU", "CPU time used per second of wall time, per instance (1 = one full core).", "percentunit",
		q(`sum by (instance) (rate(process_cpu_seconds_total{`+selJob+`}[$__rate_interval]))`, "{{instance}}")))
	b.add(8, 8, timeseries("GC cycles", "Completed garbage collection cycles per second, per instance.", "ops",
		q(`sum by (instance) (rate(go_gc_duration_seconds_count{`+selJob+`}[$__rate_interval]))`, "{{instance}}")))
	b.add(8, 8, timeseries("GC pause time", "Share of wall time spent in stop-the-world GC pauses, per instance.", "percentunit",
		q(`sum by (instance) (rate(go_gc_duration_seconds_sum{`+selJob+`}[$__rate_interval]))`, "{{instance}}")))
	b.add(8, 8, timeseries("Dropped log records", "Log records per second dropped because the asynchronous log queue was full.", "ops",
		q(`sum by (instance) (rate(gaterpc_log_records_dropped_total{`+selJob+`}[$__rate_interval]))`, "{{instance}}")))
}
