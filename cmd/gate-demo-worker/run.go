package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/demo"
	"github.com/gaterpc/gate/telemetry"
	"github.com/gaterpc/gate/telemetry/setup"
)

const usageHead = `gate-demo-worker — serves the demo service (echo, sleep, fail, count, blob, huge, cpu).

Usage:
  gate-demo-worker [flags]           serve until SIGINT/SIGTERM
  gate-demo-worker health [flags]    GET /healthz of a running worker (default 127.0.0.1:9101)
  gate-demo-worker version           print the version and exit

Every flag has an environment variable (flag, then env, then default).
The other GATE_* variables (heartbeat, liveness, HWM, huge data, ...) are
read by gate.SettingsFromEnv; a malformed or invalid value exits 2.

Flags:
`

// Defaults.
const (
	defaultBroker  = "tcp://127.0.0.1:5556"
	shutdownWithin = 10 * time.Second
)

// run parses args (flag, then env via getenv, then default), serves the
// demo service with the requested number of workers until ctx is done,
// then shuts them down gracefully. `run(ctx, ["health", ...])` probes a
// running worker's /healthz instead (see cli.Health).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "health":
			return cli.Health(ctx, "gate-demo-worker health", cli.DefaultWorkerHealthAddr, args[1:], getenv, stdout, stderr)
		case "version":
			cli.PrintVersion(stdout, "gate-demo-worker")
			return nil
		}
	}
	settings, err := cli.Settings(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("gate-demo-worker", flag.ContinueOnError)
	f := cli.NewFlags(fs, getenv).Output(stdout, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\n%s", cli.VersionLine("gate-demo-worker"), usageHead)
		fs.PrintDefaults()
	}
	f.VersionFlag("gate-demo-worker")
	brokerAddr := f.String("broker", "GATE_BROKER", defaultBroker, "broker backend endpoint")
	service := f.String("service", "GATE_SERVICE", demo.DefaultName, "service name")
	capacity := f.Int("capacity", "GATE_CAPACITY", settings.MessageMax, "requests in flight per worker, announced in READY")
	workers := f.Int("workers", "GATE_WORKERS", 1, "number of workers")
	procs := f.Int("procs", "GATE_PROCS", 2, "child processes for cpu(); 0 runs cpu in-process")
	metricsAddr := f.String("metrics-addr", "GATE_METRICS_ADDR", "", "listen address of /metrics, /healthz and /readyz (e.g. :9101); empty: no HTTP server")
	pprof := f.Bool("pprof", "GATE_PPROF", false, "also serve /debug/pprof/ on -metrics-addr (keep that address private)")
	logFormat := f.String("log-format", "GATE_LOG_FORMAT", "auto", "auto (tint text on a terminal, JSON otherwise), text or json")
	logLevel := f.String("log-level", "GATE_LOG_LEVEL", "info", "debug, info, warn or error")
	var curve cli.CurveFlags // -curve-server-key, -curve-secret-key
	curve.Register(fs)
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := curve.Apply(&settings, getenv); err != nil {
		return cli.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q", fs.Args())
	}
	switch {
	case *workers < 1:
		return cli.Usagef("-workers %d: want at least 1", *workers)
	case *capacity < 1:
		return cli.Usagef("-capacity %d: want at least 1", *capacity)
	case *procs < 0:
		return cli.Usagef("-procs %d: want >= 0", *procs)
	}
	lvl, err := cli.LogLevel(*logLevel)
	if err != nil {
		return cli.UsageError{Err: err}
	}
	switch *logFormat {
	case "auto", "text", "json":
	default:
		return cli.Usagef("-log-format %q: want auto, text or json", *logFormat)
	}

	var pool *gate.ProcessPool
	if *procs > 0 {
		if pool, err = gate.NewProcessPool(*procs); err != nil {
			return err
		}
		defer pool.Close()
	}
	svc, err := demo.NewService(*service, pool)
	if err != nil {
		return err
	}

	// /readyz: ready while every worker is connected to the broker.
	var started atomic.Pointer[[]*gate.Worker]
	tel, err := setup.New(ctx, setup.Config{
		ServiceName: "gate-demo-worker",
		Role:        gate.RoleWorker.String(),
		MetricsAddr: *metricsAddr,
		Pprof:       *pprof,
		LogFormat:   *logFormat,
		LogLevel:    lvl,
		LogWriter:   stderr,
		Ready: func(context.Context) error {
			ws := started.Load()
			if ws == nil {
				return fmt.Errorf("workers not started")
			}
			for i, w := range *ws {
				if !w.Connected() {
					return fmt.Errorf("worker %d not connected to %s", i, *brokerAddr)
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWithin)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	full := make([]string, 0, len(svc.Methods()))
	for _, m := range svc.Methods() {
		full = append(full, *service+"/"+m)
	}
	mw, err := tel.Middleware(telemetry.WithMethods(full...))
	if err != nil {
		return err
	}
	log := tel.Logger

	settings.MessageMax = *capacity
	ws := make([]*gate.Worker, *workers)
	for i := range ws {
		if ws[i], err = svc.NewWorker(*brokerAddr, gate.WithSettings(settings),
			gate.WithLogger(log), gate.WithMiddleware(mw),
			gate.WithExecutorDepthHook(tel.ExecutorDepth())); err != nil {
			return err
		}
	}
	started.Store(&ws)
	bi := telemetry.ReadBuild()
	log.Info("gate-demo-worker starting", "version", bi.Version, "revision", bi.ShortRevision(), "goversion", bi.GoVersion, "broker", *brokerAddr, "service", *service, "capacity", *capacity,
		"workers", *workers, "procs", *procs, "metrics_addr", tel.MetricsAddr(), "methods", svc.Methods())

	errs := make(chan error, len(ws))
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Serve(context.Background()); !errors.Is(err, gate.ErrClosed) {
				errs <- err
			}
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWithin)
	defer cancel()
	for _, w := range ws {
		if err := w.Shutdown(sctx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	wg.Wait()
	log.Info("gate-demo-worker stopped")
	return serveErr
}
