package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/telemetry/setup"
)

// DefaultShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM.
const DefaultShutdownTimeout = 10 * time.Second

// config is the effective configuration after flags and environment.
type config struct {
	Frontend        string
	Backend         string
	Heartbeat       time.Duration
	Liveness        int
	QueueLimit      int
	QueueTimeout    time.Duration
	MaxMsgSize      int64
	ShutdownTimeout time.Duration
	MetricsAddr     string
	Pprof           bool
	LogLevel        string
	LogFormat       string
	Curve           curveConfig // security.go
}

// envFlags binds flags whose defaults come from the environment.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	err    error
}

func (e *envFlags) str(p *string, name, env, def, usage string) {
	if v := e.getenv(env); v != "" {
		def = v
	}
	e.fs.StringVar(p, name, def, usage+" (env "+env+")")
}

func (e *envFlags) dur(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v := e.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.err = errors.Join(e.err, fmt.Errorf("%s=%q: %w", env, v, err))
		}
		def = d
	}
	e.fs.DurationVar(p, name, def, usage+" (env "+env+")")
}

func (e *envFlags) int(p *int, name, env string, def int, usage string) {
	if v := e.getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.err = errors.Join(e.err, fmt.Errorf("%s=%q: %w", env, v, err))
		}
		def = n
	}
	e.fs.IntVar(p, name, def, usage+" (env "+env+")")
}

func (e *envFlags) int64(p *int64, name, env string, def int64, usage string) {
	if v := e.getenv(env); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			e.err = errors.Join(e.err, fmt.Errorf("%s=%q: %w", env, v, err))
		}
		def = n
	}
	e.fs.Int64Var(p, name, def, usage+" (env "+env+")")
}

func (e *envFlags) bool(p *bool, name, env string, def bool, usage string) {
	if v := e.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.err = errors.Join(e.err, fmt.Errorf("%s=%q: %w", env, v, err))
		}
		def = b
	}
	e.fs.BoolVar(p, name, def, usage+" (env "+env+")")
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("gate-broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &envFlags{fs: fs, getenv: getenv}
	e.str(&c.Frontend, "frontend", "GATE_FRONTEND", broker.DefaultFrontend, "client endpoint to bind")
	e.str(&c.Backend, "backend", "GATE_BACKEND", broker.DefaultBackend, "worker endpoint to bind")
	e.dur(&c.Heartbeat, "heartbeat", "GATE_HEARTBEAT", broker.DefaultHeartbeat, "worker heartbeat interval")
	e.int(&c.Liveness, "liveness", "GATE_LIVENESS", broker.DefaultLiveness, "heartbeat intervals before a silent worker expires")
	e.int(&c.QueueLimit, "queue-limit", "GATE_QUEUE_LIMIT", broker.DefaultQueueLimit, "max queued requests per service")
	e.dur(&c.QueueTimeout, "queue-timeout", "GATE_QUEUE_TIMEOUT", broker.DefaultQueueTimeout, "max wait for a worker before BusyWorkerError")
	e.int64(&c.MaxMsgSize, "max-msg-size", "GATE_MAX_MSG_SIZE", broker.DefaultMaxMsgSize, "max inbound message size in bytes (-1 = unlimited)")
	e.dur(&c.ShutdownTimeout, "shutdown-timeout", "GATE_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "graceful drain limit on SIGINT/SIGTERM")
	e.str(&c.MetricsAddr, "metrics-addr", "GATE_METRICS_ADDR", "", "listen address of /metrics, /healthz and /readyz (e.g. :9100); empty: no HTTP server")
	e.bool(&c.Pprof, "pprof", "GATE_PPROF", false, "also serve /debug/pprof/ on -metrics-addr (keep that address private)")
	e.str(&c.LogLevel, "log-level", "GATE_LOG_LEVEL", "info", "debug, info, warn or error")
	e.str(&c.LogFormat, "log-format", "GATE_LOG_FORMAT", "text", "text or json")
	c.Curve.register(e)
	if e.err != nil {
		return c, e.err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "health" {
		return health(ctx, args[1:], getenv, stderr)
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	lvl, err := cli.LogLevel(cfg.LogLevel)
	if err != nil {
		return err
	}

	// The broker exists only after the telemetry (it logs through it), so
	// /readyz reads it through an atomic pointer.
	var current atomic.Pointer[broker.Broker]
	tel, err := setup.New(ctx, setup.Config{
		ServiceName: "gate-broker",
		Role:        "broker",
		MetricsAddr: cfg.MetricsAddr,
		Pprof:       cfg.Pprof,
		LogFormat:   strings.ToLower(cfg.LogFormat),
		LogLevel:    lvl,
		LogWriter:   stderr,
		Ready: func(context.Context) error {
			b := current.Load()
			if b == nil {
				return errors.New("broker not created yet")
			}
			select {
			case <-b.Ready():
				return nil
			default:
				return errors.New("broker not listening yet")
			}
		},
	})
	if err != nil {
		return err
	}
	err = serve(ctx, cfg, tel, &current)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, tel.Shutdown(sctx))
}

// serve runs the broker with tel's logger and metrics until ctx is done,
// then shuts it down within cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg config, tel *setup.Telemetry, current *atomic.Pointer[broker.Broker]) error {
	logger := tel.Logger
	// Spans (when an OTEL_* exporter is configured) and per-request Debug
	// logs come from an observer on the broker's loop, metrics from its
	// hooks: neither costs a goroutine per request.
	_, noTracing := tel.TracerProvider.(noop.TracerProvider)
	logger.LogAttrs(ctx, slog.LevelInfo, "gate-broker config",
		slog.String("frontend", cfg.Frontend), slog.String("backend", cfg.Backend),
		slog.Duration("heartbeat", cfg.Heartbeat), slog.Int("liveness", cfg.Liveness),
		slog.Int("queue_limit", cfg.QueueLimit), slog.Duration("queue_timeout", cfg.QueueTimeout),
		slog.Int64("max_msg_size", cfg.MaxMsgSize), slog.Duration("shutdown_timeout", cfg.ShutdownTimeout),
		slog.String("metrics_addr", tel.MetricsAddr()), slog.Bool("tracing", !noTracing))

	hooks, err := tel.BrokerHooks()
	if err != nil {
		return err
	}
	opts := []broker.Option{
		broker.WithFrontend(cfg.Frontend),
		broker.WithBackend(cfg.Backend),
		broker.WithHeartbeat(cfg.Heartbeat),
		broker.WithLiveness(cfg.Liveness),
		broker.WithQueueLimit(cfg.QueueLimit),
		broker.WithQueueTimeout(cfg.QueueTimeout),
		broker.WithMaxMsgSize(cfg.MaxMsgSize),
		broker.WithLogger(logger),
		broker.WithHooks(hooks),
	}
	sec, err := cfg.Curve.options(logger)
	if err != nil {
		return err
	}
	opts = append(opts, sec...)
	if obs := tel.BrokerObserver(); obs != nil {
		opts = append(opts, broker.WithObserver(obs))
	}
	b, err := broker.New(opts...)
	if err != nil {
		return err
	}
	current.Store(b)
	if err := tel.RegisterBroker(b); err != nil {
		return err
	}

	errc := make(chan error, 1)
	go func() { errc <- b.Serve(context.Background()) }()
	select {
	case err = <-errc: // failed to start or stopped by itself
	case <-ctx.Done():
		logger.LogAttrs(context.Background(), slog.LevelInfo, "shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		if serr := b.Shutdown(sctx); serr != nil {
			logger.LogAttrs(context.Background(), slog.LevelWarn, "graceful shutdown incomplete", slog.String("error", serr.Error()))
		}
		cancel()
		err = <-errc
	}
	if errors.Is(err, gate.ErrClosed) {
		err = nil
	}
	return err
}

// health checks a running broker. With a metrics address (-addr, or
// GATE_METRICS_ADDR as in the container image) it GETs /healthz like the
// other gate binaries (cli.Health: flags -addr, -path, -timeout). With
// -frontend, or when no metrics address is configured, it asks the broker
// itself for Gate.keepalive over ZeroMQ (keepalive).
func health(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if !hasFlag(args, "frontend") && (hasFlag(args, "addr") || getenv("GATE_METRICS_ADDR") != "") {
		return cli.Health(ctx, "gate-broker health", args, getenv, stderr, stderr)
	}
	return keepalive(ctx, args, getenv, stderr)
}

// hasFlag reports whether args set the flag name (-name, --name, -name=v).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// keepalive asks a broker for Gate.keepalive(b"heartbeat") and succeeds if
// it answers bin "200" in time.
func keepalive(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gate-broker health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &envFlags{fs: fs, getenv: getenv}
	var endpoint string
	var timeout time.Duration
	e.str(&endpoint, "frontend", "GATE_FRONTEND", broker.DefaultFrontend, "broker client endpoint")
	fs.DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for the answer")
	if e.err != nil {
		return e.err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	endpoint = strings.NewReplacer("://*:", "://127.0.0.1:", "://0.0.0.0:", "://127.0.0.1:").Replace(endpoint)
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}

	zctx, err := zmq.NewContext()
	if err != nil {
		return err
	}
	defer func() {
		zctx.SetRetryAfterEINTR(false)
		_ = zctx.Term()
	}()
	s, err := zctx.NewSocket(zmq.DEALER)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetLinger(0)
	_ = s.SetSndtimeo(timeout)
	if err := curveProbe(s, getenv); err != nil { // security.go
		return err
	}
	if err := s.Connect(endpoint); err != nil {
		return fmt.Errorf("health: connect %s: %w", endpoint, err)
	}
	rid := []byte(fmt.Sprintf("health-%d", time.Now().UnixNano()))
	req := wire.ClientRequest{Service: wire.InternalService, RequestID: rid, Body: [][]byte{
		[]byte("\xa9keepalive"), []byte("\x91\xc4\x09heartbeat"), {0x80},
	}}
	if _, err := s.SendMessage(req.Frames()); err != nil {
		return fmt.Errorf("health: send: %w", err)
	}
	want := []byte("\x82\xa6result\xc4\x03200\xa9exception\xc0")
	poller := zmq.NewPoller()
	poller.Add(s, zmq.POLLIN)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("health: no answer from %s within %v", endpoint, timeout)
		}
		if _, err := poller.Poll(left); err != nil && zmq.AsErrno(err) != zmq.Errno(syscall.EINTR) {
			return fmt.Errorf("health: %w", err)
		}
		frames, err := s.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			continue
		}
		rep, err := wire.ParseClientReply(frames)
		if err != nil || !bytes.Equal(rep.RequestID, rid) {
			continue
		}
		if len(rep.Body) != 1 || !bytes.Equal(rep.Body[0], want) {
			return fmt.Errorf("health: unexpected keepalive answer %x", rep.Body)
		}
		fmt.Fprintf(stderr, "ok %s\n", endpoint)
		return nil
	}
}
