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
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/wire"
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
	LogLevel        string
	LogFormat       string
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
	e.str(&c.LogLevel, "log-level", "GATE_LOG_LEVEL", "info", "debug, info, warn or error")
	e.str(&c.LogFormat, "log-format", "GATE_LOG_FORMAT", "text", "text or json")
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

func newLogger(c config, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(c.LogFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.LogFormat)
}

// observability builds what the broker is observed with beyond its
// logger: extra broker options (hooks, middleware), and a stop function
// for any servers it starts. Telemetry (metrics endpoint, tracing) plugs
// in here; stop runs after the broker has shut down.
func observability(_ context.Context, _ config, _ *slog.Logger) (opts []broker.Option, stop func(context.Context) error, err error) {
	return nil, func(context.Context) error { return nil }, nil
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
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "gate-broker config",
		slog.String("frontend", cfg.Frontend), slog.String("backend", cfg.Backend),
		slog.Duration("heartbeat", cfg.Heartbeat), slog.Int("liveness", cfg.Liveness),
		slog.Int("queue_limit", cfg.QueueLimit), slog.Duration("queue_timeout", cfg.QueueTimeout),
		slog.Int64("max_msg_size", cfg.MaxMsgSize), slog.Duration("shutdown_timeout", cfg.ShutdownTimeout))

	obsOpts, stopObs, err := observability(ctx, cfg, logger)
	if err != nil {
		return err
	}
	opts := append([]broker.Option{
		broker.WithFrontend(cfg.Frontend),
		broker.WithBackend(cfg.Backend),
		broker.WithHeartbeat(cfg.Heartbeat),
		broker.WithLiveness(cfg.Liveness),
		broker.WithQueueLimit(cfg.QueueLimit),
		broker.WithQueueTimeout(cfg.QueueTimeout),
		broker.WithMaxMsgSize(cfg.MaxMsgSize),
		broker.WithLogger(logger),
	}, obsOpts...)
	b, err := broker.New(opts...)
	if err != nil {
		return errors.Join(err, stopObs(context.Background()))
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
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, stopObs(sctx))
}

// health asks a broker for Gate.keepalive(b"heartbeat") and succeeds if it
// answers bin "200" in time.
func health(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
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
