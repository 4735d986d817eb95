// Command gatectl calls, inspects and load-tests gate-rpc services through
// a broker, and runs the whole demo in one process.
//
//	gatectl [-broker tcp://127.0.0.1:5555] [-timeout 60s] [-json] [-v] COMMAND ...
//
//	gatectl call SERVICE.METHOD [ARG...] [-kw key=value...] [-d @FILE|-|JSON] [-o FILE]
//	gatectl stream SERVICE.METHOD [ARG...] [-kw key=value...] [-d @FILE|-|JSON] [-o FILE]
//	gatectl services [SERVICE] | info | interfaces SERVICE
//	gatectl bench -service S -method M [-n N | -duration D] [-warmup D] [-concurrency C]
//	              [-connections K] [-size BYTES | -d ...] [-stream] [-rate R] [-csv FILE]
//	              [-metrics-addr ADDR [-pprof]] [-histogram-png FILE] [-progress]
//	gatectl demo [-frontend E] [-backend E] [-metrics-addr ADDR] [-workers N] [-rate R]
//	gatectl health [-addr HOST:PORT] [-path /healthz]
//	gatectl keygen [-if-missing] [-allow FILE [-services S1,S2]] PREFIX
//	gatectl version | -version
//	gatectl help [COMMAND]
//
// Global flags may come before or after the command and mirror environment
// variables (flag, then env, then default): -broker GATE_BROKER (the
// broker's frontend), -timeout GATE_REPLY_TIMEOUT (gate.Settings.ReplyTimeout:
// the deadline of a call, of a whole stream, and of each bench call),
// -curve-server-key GATE_CURVE_SERVER_KEY_FILE and -curve-secret-key
// GATE_CURVE_SECRET_KEY_FILE (CURVE key files: the broker's public key and
// this client's secret key; see docs/security.md). Other
// GATE_* variables (heartbeat, HWM, huge data limits) configure the client
// through gate.SettingsFromEnv; a malformed or invalid value of any of them
// is refused. Before it waits for a reply, a command checks that something
// speaking ZeroMQ listens at a tcp:// or ipc:// -broker (it reads the ZMTP
// greeting, within -timeout and at most 3s), so a broker that is down is
// reported at once ("no broker answered at tcp://...: connection
// refused"). With OTEL_* configuring an exporter, every command traces its
// client hop (service name gatectl). -h, help and -version print on
// stdout. Exit codes: 0 success, 1 failure (a remote exception, no broker,
// a failed bench call, an unhealthy target), 2 usage error (a bad flag or
// GATE_* value).
//
// # Values
//
// Arguments and -kw values are JSON (1, 2.5, true, null, "s", [1,2],
// {"a":1}); a word that is not valid JSON is sent as a string, so
// `call demo.echo hello` sends "hello". Integers are sent as msgpack
// integers. Results are printed as JSON, indented (compact with -json).
// msgpack bin values ([]byte) print as {"$bytes": "<base64>"}, and that
// same object given as an argument is sent as bin; map keys that are not
// strings print as Python's str() writes them (1 → "1", True → "True").
//
// -d gives the arguments as one JSON document instead, for arguments too
// long for a command line: a bare array of positional arguments, or an
// object {"args": [...], "kwargs": {...}} (either key may be absent);
// -d @FILE reads FILE, -d - reads stdin (up to 256 MiB). Positional
// words are appended to -d's arguments and -kw pairs override its
// kwargs. -o FILE writes the result to FILE instead of stdout: a bytes
// result (bin, huge data) raw, anything else as a JSON line; stream items
// are appended in order; -o - writes raw bytes to stdout.
//
//	$ gatectl call demo.echo -d '{"args": [1], "kwargs": {"name": "gate"}}'
//	$ gatectl call demo.huge 1000000 -o blob.bin
//	$ echo '[3]' | gatectl stream demo.count -d -
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
//	SERVICE  WORKERS  STALLED  CAPACITY  IN_FLIGHT  QUEUED  OLDEST  CALLS  ERRORS  DESCRIPTION
//	demo     1        0        5000      0          0       0s      5      1       gate demo service
//	Gate     -        -        -         -          -       -       -      -       the broker's internal service
//	$ gatectl services demo
//	service      demo
//	description  gate demo service
//	workers      1 (0 stalled), capacity 5000
//	in flight    0
//	queued       0 (oldest 0s)
//	calls        5, errors 1
//	outcomes     error 1, ok 4
//
//	WORKER                            PROTOCOL   CAPACITY  IN_FLIGHT  LAST_SEEN  STALLED  KEY
//	03a0230d50b16d7c1fc7c6170791d38f  gaterpc/2  5000      0          18ms       no       -
//	$ gatectl interfaces demo
//	METHOD          SIGNATURE                    DOC
//	blob            (size: int) -> HugeData      Return size pseudo-random bytes as HugeData.
//	count           (n: int) -> Iterator[int]    Stream the integers 0..n-1.
//	...
//	$ gatectl -json info
//	{"broker":"tcp://127.0.0.1:5555","id":"9174c2b6e26256d1a1d185d2f45549f5","services":["demo"]}
//
// # bench
//
// bench runs -concurrency closed-loop callers (at most 10000) of
// SERVICE.METHOD over -connections clients (each its own socket and I/O
// loop), each call sending one bin argument of -size bytes (the demo's
// echo sends it back) or the arguments of -d, for -duration, for -n calls
// in total, or until SIGINT, optionally paced to -rate calls/s in total,
// after -warmup of unrecorded calls. With -stream each call is a stream:
// its latency runs to the last item and items/s is reported. A first call
// is made alone: when it fails on this side (an argument that cannot be
// encoded), bench stops there, as it does at the first such error later;
// remote errors are counted. A progress line
// is printed on stderr every second when stderr is a terminal (or with
// -progress). The summary gives calls/s, errors by code,
// min/mean/p50/p90/p95/p99/p99.9/max latency of the successful calls and
// a log-scale text histogram; -json prints the same as one JSON object
// (latencies in milliseconds), -csv FILE appends it as a CSV row (with a
// header when FILE is new) and -histogram-png FILE draws the histogram as
// a PNG. Latencies are recorded in an HDR-like histogram (32 sub-buckets
// per power of two: at most 3% error). With -metrics-addr, the client is
// instrumented (rpc_client_* metrics, traces with OTEL_*) and /metrics,
// /healthz are served while the bench runs. bench exits 1 if any call
// failed.
//
//	$ gatectl bench -service demo -method echo -concurrency 4 -duration 10s -size 1024 -histogram-png h.png
//	bench demo.echo: 4 callers on 1 connection(s), 1024-byte payload, 10.001s
//	  calls     19353 (1935.0/s)
//	  errors    0
//	  latency   min 457µs  mean 2.06ms  p50 1.70ms  p90 3.15ms  p95 4.13ms  p99 7.73ms  p99.9 25.7ms  max 97.0ms
//
//	latency histogram (successful calls):
//	      457µs - 639µs            31   0.2% ■
//	      639µs - 893µs           529   2.7% ■■■
//	      893µs - 1.25ms         3280  16.9% ■■■■■■■■■■■■■■■■■■■■■
//	     ...
//	     18.2ms - 25.4ms           22   0.1% ■
//	     25.4ms - 35.5ms            7   0.0% ■
//	     35.5ms - 49.7ms            8   0.0% ■
//	     49.7ms - 69.4ms            0   0.0%
//	     69.4ms - 97.0ms            4   0.0% ■
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
