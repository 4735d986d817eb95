package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/demo"
	"github.com/gaterpc/gate/telemetry"
	"github.com/gaterpc/gate/telemetry/setup"
)

// Defaults of `gatectl demo`.
const (
	demoFrontend    = "tcp://127.0.0.1:5555"
	demoBackend     = "tcp://127.0.0.1:5556"
	demoMetricsAddr = "127.0.0.1:9100"
	demoShutdown    = 10 * time.Second
)

// demo runs a broker, demo workers, a traffic generator and the telemetry
// server in this process until the context ends (SIGINT/SIGTERM).
func (a *app) demo(args []string) error {
	f := a.flags("demo")
	fs := f.FS
	frontend := f.String("frontend", "GATE_FRONTEND", demoFrontend, "broker frontend (clients) to bind")
	backend := f.String("backend", "GATE_BACKEND", demoBackend, "broker backend (workers) to bind")
	metricsAddr := f.String("metrics-addr", "GATE_METRICS_ADDR", demoMetricsAddr, "listen address of /metrics, /healthz, /readyz; empty: none")
	service := f.String("service", "GATE_SERVICE", demo.DefaultName, "demo service name")
	workers := f.Int("workers", "GATE_WORKERS", 2, "demo workers")
	procs := f.Int("procs", "GATE_PROCS", 2, "child processes for demo.cpu; 0 runs it in-process")
	rate := f.Float("rate", "", 5, "traffic generator calls per second; 0 disables it")
	logFormat := f.String("log-format", "GATE_LOG_FORMAT", "auto", "auto (tint text on a terminal, JSON otherwise), text or json")
	logLevel := f.String("log-level", "GATE_LOG_LEVEL", "info", "debug, info, warn or error")
	plain := f.Bool("plain", "GATE_DEMO_PLAIN", false, "no CURVE at all (e.g. to let Python 0.2.12 workers join)")
	curveFront := f.Bool("curve-frontend", "GATE_DEMO_CURVE_FRONTEND", false, "CURVE on the frontend too (gatectl in another terminal then needs the printed key flags)")
	if err := f.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return cli.Usagef("demo: unexpected arguments %q", fs.Args())
	case *workers < 1:
		return cli.Usagef("demo: -workers %d: want at least 1", *workers)
	}
	lvl, err := cli.LogLevel(*logLevel)
	if err != nil {
		return err
	}
	settings := a.settings

	// Teardown runs in reverse order of construction.
	var stops []func(context.Context) error
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), demoShutdown)
		defer cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			_ = stops[i](sctx)
		}
	}()

	var b *broker.Broker
	tel, err := setup.New(a.ctx, setup.Config{
		ServiceName: "gatectl-demo", Role: "demo", MetricsAddr: *metricsAddr,
		LogFormat: *logFormat, LogLevel: lvl, LogWriter: a.stderr, NoGlobals: true,
		Ready: func(context.Context) error { return demoReady(b, *service) },
	})
	if err != nil {
		return err
	}
	stops = append(stops, tel.Shutdown)
	log := tel.Logger
	var curve *demoCurve // security.go
	var bsec []broker.Option
	var wsec, csec []gate.CommonOption
	if !*plain {
		if curve, err = newDemoCurve(*curveFront); err != nil {
			return err
		}
		stops = append(stops, func(context.Context) error { curve.close(); return nil })
		bsec = curve.brokerOptions(*service, *curveFront)
		wsec = append(wsec, gate.WithCurve(curve.server.Public, curve.worker))
		if *curveFront {
			csec = append(csec, gate.WithCurve(curve.server.Public, curve.client))
		}
		curve.log(log, *curveFront)
	}
	topts := []telemetry.Option{telemetry.WithTracerProvider(tel.TracerProvider), telemetry.WithPropagators(tel.Propagator)}

	// Broker.
	bm, err := tel.BrokerMetrics()
	if err != nil {
		return err
	}
	b, err = broker.New(append([]broker.Option{broker.WithFrontend(*frontend), broker.WithBackend(*backend), broker.WithLogger(log),
		broker.WithObserver(bm, telemetry.BrokerObserver(log, topts...))}, bsec...)...)
	if err != nil {
		return err
	}
	if err := tel.RegisterBroker(b); err != nil {
		b.Close()
		return err
	}
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- b.Serve(context.Background()) }()
	stops = append(stops, func(ctx context.Context) error {
		if err := b.Shutdown(ctx); err != nil {
			b.Close()
		}
		return <-brokerDone
	})
	front, back, err := b.Addrs(a.ctx)
	if err != nil {
		return fmt.Errorf("demo: broker: %w", err)
	}

	// Workers.
	var pool *gate.ProcessPool
	if *procs > 0 {
		if pool, err = gate.NewProcessPool(*procs); err != nil {
			return err
		}
		stops = append(stops, func(context.Context) error { return pool.Close() })
	}
	svc, err := demo.NewService(*service, pool)
	if err != nil {
		return err
	}
	var full []string
	for _, m := range svc.Methods() {
		full = append(full, *service+"/"+m)
	}
	sm, err := telemetry.NewServerMetrics(tel.Registry, telemetry.WithMethods(full...))
	if err != nil {
		return err
	}
	wmw := gate.Chain(telemetry.Tracing(append(topts, telemetry.WithMethods(full...))...), sm.Middleware(), telemetry.Logging(log))
	var wg sync.WaitGroup
	// Runs after every worker's Shutdown (teardown is in reverse).
	stops = append(stops, func(context.Context) error { wg.Wait(); return nil })
	for range *workers {
		opts := []gate.WorkerOption{gate.WithSettings(settings), gate.WithLogger(log), gate.WithMiddleware(wmw),
			gate.WithExecutorDepthHook(sm.SetExecutorQueueDepth)}
		for _, o := range wsec {
			opts = append(opts, o)
		}
		w, err := svc.NewWorker(back, opts...)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Serve(context.Background())
		}()
		stops = append(stops, w.Shutdown)
	}

	// Traffic.
	cm, err := telemetry.NewClientMetrics(tel.Registry, telemetry.WithMethods(full...))
	if err != nil {
		return err
	}
	copts := []gate.ClientOption{gate.WithSettings(settings), gate.WithLogger(log), gate.WithTimeout(a.g.timeout),
		gate.WithMiddleware(telemetry.Tracing(append(topts, telemetry.WithMethods(full...), telemetry.WithServerAddress(front))...), cm.Middleware(), telemetry.Logging(log))}
	for _, o := range csec {
		copts = append(copts, o)
	}
	c, err := gate.NewClient(front, copts...)
	if err != nil {
		return err
	}
	stops = append(stops, func(context.Context) error { return c.Close() })
	tctx, stopTraffic := context.WithCancel(context.Background())
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		demo.Traffic(tctx, c, *service, *rate, a.g.timeout, log)
	}()
	stops = append(stops, func(context.Context) error { stopTraffic(); <-trafficDone; return nil })

	printBanner(a.stdout, front, back, tel.MetricsAddr(), *service, *workers, *rate, svc.Methods())
	if curve != nil {
		curve.banner(a.stdout, *curveFront, *service)
	}
	select {
	case <-a.ctx.Done():
		fmt.Fprintln(a.stdout, "\nshutting down...")
		return nil
	case err := <-brokerDone:
		brokerDone <- err // for the teardown
		if errors.Is(err, gate.ErrClosed) {
			err = nil
		}
		return fmt.Errorf("demo: broker stopped: %w", err)
	}
}

// demoReady is /readyz of the demo: the broker is bound and has a live
// worker for service.
func demoReady(b *broker.Broker, service string) error {
	if b == nil {
		return errors.New("broker not started")
	}
	select {
	case <-b.Ready():
	default:
		return errors.New("broker not bound yet")
	}
	for _, s := range b.Stats().Services {
		if s.Name == service && s.Capacity > 0 {
			return nil
		}
	}
	return fmt.Errorf("no worker for %s yet", service)
}

func printBanner(w io.Writer, front, back, metrics, service string, workers int, rate float64, methods []string) {
	ctl := "gatectl"
	if front != defaultBroker {
		ctl += " -broker " + front
	}
	fmt.Fprintf(w, "gate demo is running — Ctrl-C to stop.\n")
	fmt.Fprintf(w, "  version   %s\n\n", cli.VersionLine("gatectl"))
	fmt.Fprintf(w, "  broker    frontend %s (clients)  backend %s (workers)\n", front, back)
	fmt.Fprintf(w, "  workers   %d × service %q: %s\n", workers, service, strings.Join(methods, ", "))
	if rate > 0 {
		fmt.Fprintf(w, "  traffic   ~%g calls/s: echo, count stream, fail (ValueError), huge (1 MiB)\n", rate)
	}
	if metrics != "" {
		u := strings.TrimSuffix(cli.HealthURL(metrics, "/"), "/")
		fmt.Fprintf(w, "  metrics   %s/metrics\n", u)
		fmt.Fprintf(w, "  health    %s/healthz  (ready: %s/readyz)\n", u, u)
	}
	fmt.Fprintf(w, "\nTry in another terminal (gatectl = go run ./cmd/gatectl):\n")
	for _, ex := range []string{
		"services",
		"interfaces " + service,
		"call " + service + `.echo hello 42 '{"x":[1,2]}' -kw name=gate`,
		"stream " + service + ".count 5",
		"call " + service + ".fail boom      # exit code 1, ValueError on stderr",
		"bench -service " + service + " -method echo -concurrency 8 -duration 10s -size 1024",
	} {
		fmt.Fprintf(w, "  %s %s\n", ctl, ex)
	}
	if metrics != "" {
		fmt.Fprintf(w, "  %s health -addr %s\n", ctl, metrics)
	}
	fmt.Fprintln(w)
}
