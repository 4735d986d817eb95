package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/demo"
)

// Defaults.
const (
	defaultBroker  = "tcp://127.0.0.1:5556"
	shutdownWithin = 10 * time.Second
)

// run parses args (flag, then env via getenv, then default), serves the
// demo service with the requested number of workers until ctx is done,
// then shuts them down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	settings, err := gate.SettingsFromEnv(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("gate-demo-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envOr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) (int, error) {
		v := getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not an integer", name, v)
		}
		return n, nil
	}
	capDef, err := envInt("GATE_CAPACITY", settings.MessageMax)
	if err != nil {
		return err
	}
	workersDef, err := envInt("GATE_WORKERS", 1)
	if err != nil {
		return err
	}
	procsDef, err := envInt("GATE_PROCS", 2)
	if err != nil {
		return err
	}
	brokerAddr := fs.String("broker", envOr("GATE_BROKER", defaultBroker), "broker backend endpoint (env GATE_BROKER)")
	service := fs.String("service", envOr("GATE_SERVICE", demo.DefaultName), "service name (env GATE_SERVICE)")
	capacity := fs.Int("capacity", capDef, "requests in flight per worker, announced in READY (env GATE_CAPACITY)")
	workers := fs.Int("workers", workersDef, "number of workers (env GATE_WORKERS)")
	procs := fs.Int("procs", procsDef, "child processes for cpu(); 0 runs cpu in-process (env GATE_PROCS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workers < 1 {
		return fmt.Errorf("-workers %d: want at least 1", *workers)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

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
	settings.MessageMax = *capacity
	ws := make([]*gate.Worker, *workers)
	for i := range ws {
		if ws[i], err = svc.NewWorker(*brokerAddr, gate.WithSettings(settings), gate.WithLogger(log)); err != nil {
			return err
		}
	}
	log.Info("gate-demo-worker starting", "broker", *brokerAddr, "service", *service, "capacity", *capacity,
		"workers", *workers, "procs", *procs, "methods", svc.Methods())

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
