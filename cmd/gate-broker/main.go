// Command gate-broker runs a gate-rpc broker.
//
//	gate-broker [flags]          serve until SIGINT/SIGTERM
//	gate-broker health [flags]   exit 0 if the broker's /healthz (or Gate.keepalive) answers
//	gate-broker version          print the version (also -version, --version)
//
// Every flag has an environment variable (flag wins over env, env over the
// default): -frontend GATE_FRONTEND, -backend GATE_BACKEND, -heartbeat
// GATE_HEARTBEAT, -liveness GATE_LIVENESS, -queue-timeout GATE_TIMEOUT
// (gate.Settings.Timeout, 0.2.12's TIMEOUT), -hwm GATE_HWM, -queue-limit
// GATE_QUEUE_LIMIT, -max-msg-size GATE_MAX_MSG_SIZE, -shutdown-timeout
// GATE_SHUTDOWN_TIMEOUT, -metrics-addr GATE_METRICS_ADDR, -pprof
// GATE_PPROF, -native-trim GATE_NATIVE_TRIM (period at which libzmq's
// freed C heap goes back to the OS; 0 turns it off), -log-level
// GATE_LOG_LEVEL, -log-format GATE_LOG_FORMAT
// (auto: tint text on a terminal, JSON otherwise). Every GATE_* variable
// of gate.SettingsFromEnv is validated; a malformed or invalid value, or
// a flag out of range (-heartbeat 0, -shutdown-timeout -1s), exits 2
// with a message. Run with -h for the defaults; -h and -version print on
// stdout.
//
// CURVE (docs/security.md): -curve-secret-key GATE_CURVE_SECRET_KEY_FILE
// (the server's secret key, from gatectl keygen; GATE_CURVE_SECRET_KEY
// may hold the key itself) turns it on; -curve-clients
// GATE_CURVE_CLIENTS_FILE and -curve-workers GATE_CURVE_WORKERS_FILE are
// the allow-lists (lines "KEY" or "KEY service1,service2", "*" for any
// key); -curve-plain-frontend GATE_CURVE_PLAIN_FRONTEND keeps the
// frontend plain. Without a secret key the broker runs plain and warns
// loudly when a socket is bound beyond loopback. With CURVE on the
// frontend the Gate.keepalive probe of `health` authenticates with the
// server's own key pair (from the same GATE_CURVE_SECRET_KEY[_FILE]),
// which the broker always admits on its frontend.
//
// With -metrics-addr (e.g. ":9100") it serves /metrics (the
// gaterpc_broker_* series from the broker's hooks and Stats, plus Go,
// process and build info), /healthz and /readyz, and with -pprof the
// net/http/pprof profiles under /debug/pprof/. Traces are exported only
// when the OTEL_* environment configures an exporter; the broker hop is
// then traced by telemetry.BrokerObserver on the broker's loop. `health`
// GETs /healthz when a metrics address is set (-addr or
// GATE_METRICS_ADDR), else it sends Gate.keepalive to -frontend.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gaterpc/gate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode("gate-broker", err, os.Stderr))
}
