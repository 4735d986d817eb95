// Command gate-demo-worker serves the demo service (echo, sleep, fail,
// count, blob/huge, cpu; see internal/demo) to a gate broker's backend.
//
//	gate-demo-worker -broker tcp://127.0.0.1:5556 -service demo -workers 2 -metrics-addr :9101
//	gate-demo-worker health [-addr 127.0.0.1:9101] [-path /readyz]
//	gate-demo-worker version     (also -version)
//
// Flags mirror environment variables (flag, then env, then default):
// -broker GATE_BROKER, -service GATE_SERVICE, -capacity GATE_CAPACITY,
// -workers GATE_WORKERS, -procs GATE_PROCS, -metrics-addr
// GATE_METRICS_ADDR, -pprof GATE_PPROF, -log-format GATE_LOG_FORMAT
// (auto, the default: tint text on a terminal, JSON otherwise; text;
// json), -log-level GATE_LOG_LEVEL. Other GATE_* variables (heartbeat,
// liveness, HWM, huge data, ...) are read by gate.SettingsFromEnv, and
// OTEL_* by the OpenTelemetry SDK. A malformed or invalid value exits 2
// with a message; -h and -version print on stdout. `health` probes
// 127.0.0.1:9101 (the worker's port in the README and the compose stack)
// unless -addr or GATE_METRICS_ADDR says otherwise. -curve-server-key
// GATE_CURVE_SERVER_KEY_FILE and -curve-secret-key GATE_CURVE_SECRET_KEY_FILE
// turn CURVE on (the broker's public key and this worker's secret key, see
// docs/security.md; GATE_CURVE_SERVER_KEY and GATE_CURVE_SECRET_KEY may hold
// the keys themselves).
//
// With -metrics-addr the worker serves /metrics (rpc_server_*,
// gaterpc_worker_*, Go and process metrics), /healthz (alive) and /readyz
// (200 once every worker has connected to the broker), and with -pprof
// the net/http/pprof profiles under /debug/pprof/. The health
// subcommand GETs /healthz (for container healthchecks) and exits 0 on 200.
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
	if gate.RunChildIfRequested() { // process-pool child for cpu()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode("gate-demo-worker", err, os.Stderr))
}
