// Command gate-broker runs a gate-rpc broker.
//
//	gate-broker [flags]          serve until SIGINT/SIGTERM
//	gate-broker health [flags]   exit 0 if a broker answers Gate.keepalive
//
// Every flag has an environment variable (flag wins over env, env over the
// default): -frontend GATE_FRONTEND, -backend GATE_BACKEND, -heartbeat
// GATE_HEARTBEAT, -liveness GATE_LIVENESS, -queue-limit GATE_QUEUE_LIMIT,
// -queue-timeout GATE_QUEUE_TIMEOUT, -max-msg-size GATE_MAX_MSG_SIZE,
// -shutdown-timeout GATE_SHUTDOWN_TIMEOUT, -log-level GATE_LOG_LEVEL,
// -log-format GATE_LOG_FORMAT. Run with -h for the defaults.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gate-broker:", err)
		os.Exit(1)
	}
}
