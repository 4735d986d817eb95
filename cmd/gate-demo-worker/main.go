// Command gate-demo-worker serves the demo service (echo, sleep, fail,
// count, blob, cpu) to a gate broker's backend.
//
//	gate-demo-worker -broker tcp://127.0.0.1:5556 -service demo -workers 2
//
// Flags mirror environment variables (flag, then env, then default):
// -broker GATE_BROKER, -service GATE_SERVICE, -capacity GATE_CAPACITY,
// -workers GATE_WORKERS, -procs GATE_PROCS. Other GATE_* variables
// (heartbeat, huge data, ...) are read by gate.SettingsFromEnv.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gaterpc/gate/gate"
)

func main() {
	if gate.RunChildIfRequested() { // process-pool child for cpu()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gate-demo-worker:", err)
		os.Exit(1)
	}
}
