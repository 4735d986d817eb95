// Command gatectl calls, inspects and load-tests gate-rpc services through
// a broker, and runs the whole demo in one process.
//
//	gatectl [-broker tcp://127.0.0.1:5555] [-timeout 10s] [-json] [-v] COMMAND ...
//
//	gatectl call SERVICE.METHOD [ARG...] [-kw key=value...]
//	gatectl stream SERVICE.METHOD [ARG...] [-kw key=value...]
//	gatectl services | info | interfaces SERVICE
//	gatectl bench -service S -method M -concurrency N -duration D -size BYTES [-rate R]
//	              [-metrics-addr ADDR [-pprof]] [-histogram-png FILE] [-progress]
//	gatectl demo [-frontend E] [-backend E] [-metrics-addr ADDR] [-workers N] [-rate R]
//	gatectl health [-addr HOST:PORT] [-path /healthz]
//	gatectl keygen [-if-missing] [-allow FILE [-services S1,S2]] PREFIX
//
// Global flags may come before or after the command and mirror environment
// variables (flag, then env, then default): -broker GATE_BROKER (the
// broker's frontend), -timeout GATE_TIMEOUT (per call; for streams, per
// item), -curve-server-key GATE_CURVE_SERVER_KEY_FILE and
// -curve-secret-key GATE_CURVE_SECRET_KEY_FILE (CURVE key files: the
// broker's public key and this client's secret key; see
// docs/security.md). Other GATE_* variables (heartbeat, huge data limits) configure
// the client through gate.SettingsFromEnv. Exit codes: 0 success, 1
// failure (a remote exception, a failed bench call, an unhealthy target),
// 2 usage error.
//
// # Values
//
// Arguments and -kw values are JSON (1, 2.5, true, null, "s", [1,2],
// {"a":1}); a word that is not valid JSON is sent as a string, so
// `call demo.echo hello` sends "hello". Integers are sent as msgpack
// integers. Results are printed as JSON, indented (compact with -json).
// msgpack bin values ([]byte) print as {"$bytes": "<base64>"}, and that
// same object given as an argument is sent as bin; maps with non-string
// keys print their keys as text, bin keys in base64.
//
//	$ gatectl call demo.echo hello 42 '{"x":[1,2]}' -kw name=gate
//	{
//	  "args": [
//	    "hello",
//	    42,
//	    {
//	      "x": [
//	        1,
//	        2
//	      ]
//	    }
//	  ],
//	  "kwargs": {
//	    "name": "gate"
//	  }
//	}
//	$ gatectl stream demo.count 3
//	0
//	1
//	2
//	$ gatectl call demo.fail boom; echo "exit $?"
//	ValueError: ValueError('boom')
//	exit 1
//
// A remote exception prints "Class: repr" on stderr (with -v the
// traceback; with -json an {"error": {...}} object) and exits 1.
//
//	$ gatectl services
//	SERVICE  DESCRIPTION
//	demo     gate demo service
//	Gate     the broker's internal service
//	$ gatectl interfaces demo
//	METHOD          SIGNATURE                                          DOC
//	blob            (context.Context, int) (gate.HugeValue, error)     Return size pseudo-random bytes as HugeData.
//	count           (context.Context, int) (iter.Seq[int], error)      Stream the integers 0..n-1.
//	...
//	$ gatectl -json info
//	{"broker":"tcp://127.0.0.1:5555","id":"9174c2b6e26256d1a1d185d2f45549f5","services":["demo"]}
//
// # bench
//
// bench runs -concurrency closed-loop callers of SERVICE.METHOD, each
// sending one bin argument of -size bytes (the demo's echo sends it back),
// for -duration or until SIGINT, optionally paced to -rate calls/s in
// total. A progress line is printed on stderr every second when stderr is
// a terminal (or with -progress). The summary gives calls/s, errors by
// code, min/mean/p50/p90/p99/max latency of the successful calls and a
// log-scale text histogram; -json prints the same as one JSON object
// (latencies in milliseconds), and -histogram-png FILE draws the
// histogram as a PNG. Latencies are recorded in an HDR-like histogram (32
// sub-buckets per power of two: at most 3% error). With -metrics-addr,
// the client is instrumented (rpc_client_* metrics, traces with OTEL_*)
// and /metrics, /healthz are served while the bench runs. bench exits 1
// if any call failed.
//
//	$ gatectl bench -service demo -method echo -concurrency 4 -duration 10s -size 1024 -histogram-png h.png
//	bench demo.echo: 4 callers, 1024-byte payload, 10.002s
//	  calls     21079 (2107.4/s)
//	  errors    0
//	  latency   min 556µs  mean 1.89ms  p50 1.77ms  p90 2.62ms  p99 4.98ms  max 22.4ms
//
//	latency histogram (successful calls):
//	      556µs - 700µs             9   0.0% ■
//	      700µs - 882µs           117   0.6% ■
//	      882µs - 1.11ms          945   4.5% ■■■■■■
//	     1.11ms - 1.40ms         3366  16.0% ■■■■■■■■■■■■■■■■■■■■■■
//	     1.40ms - 1.76ms         6190  29.4% ■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
//	     ...
//	     17.8ms - 22.4ms            3   0.0% ■
//
// (gate-broker and a 2-worker gate-demo-worker on a 2-core machine;
// docs/bench-histogram.png is that run's -histogram-png.)
//
// # demo
//
// demo starts, in this process, a broker (frontend tcp://127.0.0.1:5555,
// backend tcp://127.0.0.1:5556), -workers demo workers (service "demo":
// echo, sleep, fail, count, blob, huge, cpu on a process pool), a traffic
// generator (a few calls/s of echo, count streams, fail and huge) and the
// telemetry server (127.0.0.1:9100: /metrics with broker, worker and client
// metrics, /healthz, /readyz), prints what runs and example commands, and
// stops cleanly on SIGINT/SIGTERM. `make run` runs it. The backend runs
// CURVE with ephemeral keys (the workers' key may serve only the demo
// service); -curve-frontend secures the frontend too (printing the key
// flags other gatectl runs need), -plain turns CURVE off.
//
// # keygen
//
// keygen writes a CURVE key pair, PREFIX.key (secret, mode 0600) and
// PREFIX.pub, and prints the public key. -if-missing keeps an existing
// PREFIX.key; -allow FILE appends the public key to a gate-broker
// allow-list (with -services, the services a worker key may serve).
//
//	$ gatectl keygen -allow workers.list -services demo keys/worker
//	rq:rM>}U?@Lns47E1%kR.o@n%FA({1wR4Lgv4-Za
//
// # health
//
// health GETs http://ADDR/healthz (-addr, env GATE_METRICS_ADDR, default
// 127.0.0.1:9100; wildcard hosts are probed on loopback) and exits 0 on
// 200 — the container healthcheck of `gatectl bench -metrics-addr`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
)

func main() {
	if gate.RunChildIfRequested() { // process-pool child of `gatectl demo` (demo.cpu)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode("gatectl", err, os.Stderr))
}
