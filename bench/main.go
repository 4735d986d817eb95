// Command compare benchmarks gate against NATS request-reply and libzmq's
// zmq_proxy on one machine, with every client, broker and server in its own
// process on 127.0.0.1. `make compare` builds it and runs it once; see
// BENCHMARKS.md at the repository root for the latest table and the method.
//
// Without a role argument it is the driver: it re-executes its own binary
// with a role as the first argument for every process it needs
// (nats-server, nats-echo, zmq-proxy, ..., see roles) and with the
// gate-broker and gate-demo-worker binaries built from ../cmd, runs the
// workloads round by round with the systems alternating, then prints the
// table (or -json), and writes -md and -png when asked.
//
// A role run by hand writes a CPU profile of its process to the file
// named by COMPARE_CPUPROFILE, when set (the gate binaries have -pprof).
//
// It is its own module (go.mod beside this file, with a replace of the
// library to ../) so that nats-server and nats.go stay out of the
// library's dependencies. Its tests run with `cd bench && go test ./...`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// roles are the subcommands the driver starts as child processes.
var roles = map[string]func(ctx context.Context, args []string) error{
	"nats-server":        runNATSServer,
	"nats-echo":          runNATSEcho,
	"nats-client":        runNATSClient,
	"zmq-proxy":          runZMQProxy,
	"zmq-echo":           runZMQEcho,
	"zmq-client":         runZMQClient,
	"raw-worker":         runRawWorker,
	"raw-client":         runRawClient,
	"gate-client":        runGateClient,
	"gate-stream-worker": runGateStreamWorker,
	"otlp-sink":          runOTLPSink,
	"render":             runRender,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 {
		if fn, ok := roles[os.Args[1]]; ok {
			err = runRole(ctx, fn, os.Args[2:])
		} else {
			err = runDriver(ctx, os.Args[1:])
		}
	} else {
		err = runDriver(ctx, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		stop()
		os.Exit(1)
	}
}

// runRole runs a role, under a CPU profile written to COMPARE_CPUPROFILE
// when that is set.
func runRole(ctx context.Context, fn func(context.Context, []string) error, args []string) error {
	path := os.Getenv("COMPARE_CPUPROFILE")
	if path == "" {
		return fn(ctx, args)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	err = fn(ctx, args)
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
