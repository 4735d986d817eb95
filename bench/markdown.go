package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// markdown renders BENCHMARKS.md: the latest run's tables, the machine,
// the exact command, and how the numbers are made. pngRef is the chart
// as the Markdown file links it.
func (r *report) markdown(mdPath, pngPath string) string {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("gate against NATS request-reply and libzmq's own `zmq_proxy`, on one machine, every process separate,\n")
	b.WriteString("all on 127.0.0.1. This file is written by `make compare` (the program is in `bench/`); it shows the\n")
	b.WriteString("latest run and is replaced by the next one.\n\n")
	fmt.Fprintf(&b, "- **When**: %s UTC, %d rounds, took %s.\n", r.Started.Format("2006-01-02 15:04"), r.Config.Rounds,
		time.Duration(r.TookS*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(&b, "- **Machine**: `nproc` %d, %s, kernel %s, %s RAM; %s, libzmq %s, nats-server %s.\n",
		m.NProc, m.CPU, m.Kernel, m.MemTotal, m.Go, m.Libzmq, m.NATS)
	if busy(m) {
		fmt.Fprintf(&b, "  The machine was busy with other work while this ran (load average %s at the start, %s at the end,\n", m.LoadAvg, m.LoadEnd)
		fmt.Fprintf(&b, "  on %d cores), so absolute numbers are low and noisy; the systems alternate within every round so that\n", m.NProc)
		b.WriteString("  the ratios are fairer than the absolute numbers, and the range column shows the spread.\n")
	} else {
		fmt.Fprintf(&b, "  Load average %s at the start, %s at the end.\n", m.LoadAvg, m.LoadEnd)
	}
	if r.ViaMake {
		fmt.Fprintf(&b, "- **Command**: `make compare`, which ran `%s` in `bench/`.\n\n", r.Command)
	} else {
		fmt.Fprintf(&b, "- **Command**: `%s`.\n\n", r.Command)
	}
	if pngPath != "" {
		rel, err := filepath.Rel(filepath.Dir(mdPath), pngPath)
		if err != nil {
			rel = pngPath
		}
		fmt.Fprintf(&b, "![calls/s of every workload, telemetry modes and targets](%s)\n\n", filepath.ToSlash(rel))
	}
	if s := r.targetTable(); s != "" {
		b.WriteString("## Targets\n\nEach of the project's speed and memory targets that this run measures, from the medians below.")
		if busy(m) {
			b.WriteString(" On a machine this busy the\nrounds of one row differ by up to 2× (the range column below), so a ratio near its bound is no verdict\neither way: rerun on a quiet machine before reading one.")
		}
		b.WriteString("\n\n" + s + "\n")
	}
	fmt.Fprintf(&b, "## Request-reply (echo)\n\ncalls/s is the median of the %d rounds, range the slowest and fastest round; p50 and p99 are\n", r.Config.Rounds)
	b.WriteString("medians over the rounds of each round's latency quantiles; ÷ NATS and ÷ zmq_proxy divide the row's calls/s by\n")
	b.WriteString("theirs at the same workload.\n\n")
	b.WriteString(r.echoTable())
	b.WriteString("\n| system | what runs |\n|---|---|\n")
	for _, s := range allSystems {
		fmt.Fprintf(&b, "| `%s` | %s |\n", s, systemWhat[s])
	}
	if s := r.streamTable(); s != "" {
		b.WriteString("\n## Streams\n\n`bench.items(n, 100)` through gate-broker (telemetry off): a generator of 100-byte `bin` items,\n")
		b.WriteString("read by `gate.Client.Stream` until the window ends, then closed (which cancels it).\n\n" + s)
	}
	if s := r.hugeTable(); s != "" {
		b.WriteString("\n## HugeData replies\n\n`demo.blob(size)` (pseudo-random, so incompressible) from gate-demo-worker through gate-broker to a\n")
		b.WriteString("`gate.Client`, one call at a time; the worker's compressor is set with `GATE_HUGE_DATA_COMPRESS` (the client\n")
		b.WriteString("recognises either). MB/s is decoded bytes per second of the call (10^6 bytes). Each run starts its own broker and\n")
		b.WriteString("worker; RSS +MiB is the peak (`VmHWM` in `/proc/<pid>/status`) minus the idle `VmRSS` before the call,\n")
		b.WriteString("the largest over the rounds. \"Client.Call\" rows decode the whole value in the client (which therefore\n")
		b.WriteString("holds it); \"streamed reader\" rows read it with `Client.CallReader` and `gate.ReadBinary` into io.Discard\n")
		b.WriteString("(the worker generates the bytes while it sends them, `gate.HugeBinary`), at most the given rate when one is\n")
		b.WriteString("shown; credit-based flow control (docs/flow-control.md) bounds every hop.\n\n" + s)
	}
	if s := r.pauseTable(); s != "" {
		b.WriteString("\n## Paused reader\n\n`demo.count(2^40)` read with `gate.StreamAs[int64]` for 3 s, then not read for the pause, then read for 3 s\n")
		b.WriteString("again; every integer must arrive once and in order. RSS +MiB as for HugeData.\n\n" + s)
	}
	if r.traced() {
		fmt.Fprintf(&b, "\nThe OTLP sink received %d export requests (%.1f MB) over the tracing rows.\n", r.Sink.Requests, float64(r.Sink.Bytes)/1e6)
	}
	b.WriteString(methodText)
	return b.String()
}

var systemWhat = map[string]string{
	"nats":            "nats-server v2 embedded (`server.NewServer`, its own process); a nats.go responder in queue group `echo` answering `m.Respond(m.Data)`; the client makes `nc.RequestWithContext` calls from N goroutines over one connection",
	"zmq_proxy":       "`zmq.Proxy` (libzmq's `zmq_proxy`) between a ROUTER frontend and a DEALER backend; a DEALER echo peer on the backend; the client is one DEALER pipelining `[stamp, payload]` messages",
	"gate-broker-raw": "the `gate-broker` binary (telemetry off); a raw DEALER worker speaking MDPW01 (READY with capacity 100000, answers HEARTBEAT, replies `{result: arg, exception: nil}`); a raw DEALER client pipelining MDPC01 `echo(payload)` requests",
	"gate":            "the `gate-broker` and `gate-demo-worker` binaries (`-procs 0`, Warn logs, no `-metrics-addr`, no `OTEL_*`); a `gate.Client` without middleware calling `demo.echo(payload)` from N goroutines",
	"gate-metrics":    "as `gate`, with `-metrics-addr` on broker and worker and Info logs, the client with telemetry/setup's middleware (tracing with a no-op provider, RED metrics, logging) and its own `/metrics`; all three scraped once a second",
	"gate-trace10":    "as `gate-metrics`, plus `OTEL_TRACES_EXPORTER=otlp` toward the sink with `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1` in all three processes",
	"gate-trace100":   "as `gate-trace10` with `OTEL_TRACES_SAMPLER=parentbased_always_on`",
}

const methodText = `
## Method

- **One invocation, separate processes.** The driver (` + "`bench/`" + `, its own Go module so that nats-server and
  nats.go stay out of the library's go.mod) re-executes its own binary for every role (nats-server,
  nats-echo, zmq-proxy, zmq-echo, raw-worker, gate-stream-worker, otlp-sink and the clients) and starts the
  gate-broker and gate-demo-worker binaries that ` + "`make compare`" + ` builds from ` + "`cmd/`" + `. Every server binds
  127.0.0.1 only. The servers of all systems start once; each measurement is a fresh client process.
- **Rounds, alternating.** Each round runs every workload (in flight × payload size) once on every
  system, and the order of the systems rotates from round to round. Workloads whose in-flight payload
  (in flight × size) exceeds 64 MiB are skipped (1 MiB at 256 in flight). The telemetry modes run at 64 B.
- **Closed loop.** A client keeps N requests in flight (N goroutines making blocking calls for NATS and
  gate; one socket-owning goroutine pipelining N requests for the raw ZeroMQ clients) for a warm-up and
  then a measured window; calls/s counts the calls that complete in the window, latencies are those
  calls' send-to-reply times (p50, p99 by nearest rank). The echo payload goes both ways on every system.
  Every client checks the replies (length, or success and length); a failed run is reported, not hidden.
- **gate at 1 MiB.** demo.echo's reply to a 1 MiB payload is larger than Settings.AutoHugeThreshold
  (1 MiB), so the gate worker sends it back as HugeData (gzip level 1, 1000-byte chunks): what a user of
  the defaults gets. The raw gate-broker rows send it back as one frame.
- **The raw peers** (zmq_proxy's client and echo, gate-broker's raw client and worker) use pebbe/zmq4's
  plain ` + "`RecvMessageBytes`/`SendMessage`" + `, so the client-side cost is the same whatever is in the middle.
- **Telemetry "off"** is the binaries without ` + "`-metrics-addr`" + `, Warn logs and no ` + "`OTEL_*`" + `, and a client
  without middleware. gate-broker and gate-demo-worker have no switch for their in-process Prometheus
  counters (the broker's metrics observer, the worker's RED middleware), so those are counted in "off" too.
- **Tracing into a discarding exporter.** The traced rows use telemetry/setup's real OTLP/HTTP exporter
  (batch span processor, protobuf encoding, HTTP POST) in all three processes, configured through the
  standard ` + "`OTEL_*`" + ` variables, toward an OTLP sink process that reads each request to the end, counts it
  and answers an empty ExportTraceServiceResponse. So the cost shown is what a deployment pays up to its
  collector's socket; the sink's own CPU shares the same two cores. The sampler is parent-based: the
  client decides (10% or all), broker and worker follow. The SDK's default batch limits apply (a span
  queue of 2048; spans beyond it are dropped by the SDK, as in production).
- **Bounded.** Every run has a time limit, the whole run has ` + "`-timeout`" + ` (20 min), and every child is
  killed at the end, on error and on ^C (and by the kernel, with Pdeathsig, if the driver dies).

Run it: ` + "`make compare`" + ` (about 9 minutes on 2 cores); shorter: ` + "`make compare COMPARE_FLAGS='-rounds 1 -duration 500ms -slow-reader-size 0 -pause 0'`" + `;
flags: ` + "`cd bench && go run . -h`" + `. ` + "`-json`" + ` prints the report as JSON. The formatting tests run with
` + "`cd bench && go test ./...`" + ` (the root ` + "`go test ./...`" + ` does not enter this module).
`

// busy reports whether the 1-minute load average at the start or the end
// was above half the cores: other work then shared the CPU with the run.
func busy(m machine) bool {
	for _, l := range []string{m.LoadAvg, m.LoadEnd} {
		var one float64
		if _, err := fmt.Sscan(l, &one); err == nil && one > float64(m.NProc)/2 {
			return true
		}
	}
	return false
}
