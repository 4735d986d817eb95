package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/telemetry"
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
	HWM             int
	MaxMsgSize      int64
	PeerBufMsgs     int
	PeerBufBytes    int64
	ShutdownTimeout time.Duration
	NativeTrim      time.Duration // period of broker.TrimNativeMemory; 0: off
	MetricsAddr     string
	Pprof           bool
	LogLevel        string
	LogFormat       string
	Curve           curveConfig // security.go
}

const usageHead = `gate-broker — a gate-rpc broker: clients on -frontend, workers on -backend.

Usage:
  gate-broker [flags]            serve until SIGINT/SIGTERM
  gate-broker health [flags]     exit 0 if the broker answers (/healthz with -addr or
                                 GATE_METRICS_ADDR, else Gate.keepalive on -frontend)
  gate-broker version            print the version and exit

Every flag has an environment variable (flag, then env, then default);
-heartbeat, -liveness, -queue-timeout and -hwm are the gate.Settings
variables, parsed as gate.SettingsFromEnv does (a bare number of seconds
is a duration). A malformed or invalid value in any GATE_* variable is
refused (exit 2).

Flags:
`

// parseConfig parses the command line over the environment. Errors are
// cli.UsageError or cli.ExitError{2} (exit 2), or flag.ErrHelp after -h
// or -version (printed on stdout).
func parseConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (config, error) {
	var c config
	// The gate.Settings variables (GATE_HEARTBEAT, GATE_LIVENESS,
	// GATE_TIMEOUT, GATE_HWM, and every other GATE_* setting, validated
	// even when the broker does not use it) are the flags' defaults.
	// GATE_CURVE_SECRET_KEY[_FILE] is the broker's own key (security.go),
	// not a client's: hidden from the gate.Settings reader.
	settings, err := cli.Settings(cli.WithoutCurve(getenv))
	if err != nil {
		return c, err
	}
	if v := getenv("GATE_QUEUE_TIMEOUT"); v != "" {
		return c, cli.Usagef("GATE_QUEUE_TIMEOUT=%q: renamed GATE_TIMEOUT (gate.Settings.Timeout, the broker's queue wait)", v)
	}
	fs := flag.NewFlagSet("gate-broker", flag.ContinueOnError)
	f := cli.NewFlags(fs, getenv).Output(stdout, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\n%s", cli.VersionLine("gate-broker"), usageHead)
		fs.PrintDefaults()
	}
	f.VersionFlag("gate-broker")
	frontend := f.String("frontend", "GATE_FRONTEND", broker.DefaultFrontend, "client endpoint to bind")
	backend := f.String("backend", "GATE_BACKEND", broker.DefaultBackend, "worker endpoint to bind")
	fs.DurationVar(&c.Heartbeat, "heartbeat", settings.Heartbeat, "worker heartbeat interval, > 0 (env GATE_HEARTBEAT)")
	fs.IntVar(&c.Liveness, "liveness", settings.Liveness, "heartbeat intervals before a silent worker expires, >= 1 (env GATE_LIVENESS)")
	fs.DurationVar(&c.QueueTimeout, "queue-timeout", settings.Timeout, "max wait for a worker before BusyWorkerError, > 0 (env GATE_TIMEOUT)")
	fs.IntVar(&c.HWM, "hwm", settings.HWM, "send and receive high-water mark of both sockets, in messages, > 0 (env GATE_HWM)")
	queueLimit := f.Int("queue-limit", "GATE_QUEUE_LIMIT", broker.DefaultQueueLimit, "max queued requests per service, > 0")
	maxMsg := f.Int("max-msg-size", "GATE_MAX_MSG_SIZE", broker.DefaultMaxMsgSize, "max inbound message size in bytes, > 0 (-1 = unlimited)")
	peerMsgs := f.Int("peer-buffer-msgs", "GATE_PEER_BUFFER_MSGS", broker.DefaultPeerBufferMessages,
		"messages held for one peer whose pipe is full, > 0; past it a client's calls fail as too slow (flow-controlled replies not counted)")
	peerBytes := f.Int("peer-buffer-bytes", "GATE_PEER_BUFFER_BYTES", broker.DefaultPeerBufferBytes,
		"bytes held for one peer whose pipe is full, all replies counted, > 0 (-1 = no byte limit)")
	shutdown := f.Duration("shutdown-timeout", "GATE_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "graceful drain limit on SIGINT/SIGTERM, > 0")
	nativeTrim := f.Duration("native-trim", "GATE_NATIVE_TRIM", broker.DefaultNativeTrimInterval, "period at which libzmq's freed C heap is returned to the OS (glibc malloc_trim), >= 0 (0: never)")
	metricsAddr := f.String("metrics-addr", "GATE_METRICS_ADDR", "", "listen address of /metrics, /healthz and /readyz (e.g. :9100); empty: no HTTP server")
	pprof := f.Bool("pprof", "GATE_PPROF", false, "also serve /debug/pprof/ on -metrics-addr (keep that address private)")
	logLevel := f.String("log-level", "GATE_LOG_LEVEL", "info", "debug, info, warn or error")
	logFormat := f.String("log-format", "GATE_LOG_FORMAT", "auto", "auto (tint text on a terminal, JSON otherwise), text or json")
	curve := c.Curve.register(f, getenv)
	if err := f.Parse(args); err != nil {
		return c, err
	}
	curve()
	c.Frontend, c.Backend, c.QueueLimit, c.MaxMsgSize = *frontend, *backend, *queueLimit, int64(*maxMsg)
	c.ShutdownTimeout, c.MetricsAddr, c.Pprof, c.NativeTrim = *shutdown, *metricsAddr, *pprof, *nativeTrim
	c.PeerBufMsgs, c.PeerBufBytes = *peerMsgs, int64(*peerBytes)
	c.LogLevel, c.LogFormat = *logLevel, strings.ToLower(*logFormat)
	switch {
	case fs.NArg() > 0:
		return c, cli.Usagef("unexpected arguments %q", fs.Args())
	case c.Heartbeat < time.Millisecond:
		return c, cli.Usagef("-heartbeat %v: want at least 1ms", c.Heartbeat)
	case c.Liveness < 1:
		return c, cli.Usagef("-liveness %d: want at least 1", c.Liveness)
	case c.QueueTimeout <= 0:
		return c, cli.Usagef("-queue-timeout %v: want > 0", c.QueueTimeout)
	case c.HWM < 1:
		return c, cli.Usagef("-hwm %d: want at least 1 (the broker has no libzmq-default HWM; GATE_HWM off, 0 or negative means -1)", c.HWM)
	case c.QueueLimit < 1:
		return c, cli.Usagef("-queue-limit %d: want at least 1", c.QueueLimit)
	case c.MaxMsgSize == 0 || c.MaxMsgSize < -1:
		return c, cli.Usagef("-max-msg-size %d: want > 0, or -1 for unlimited", c.MaxMsgSize)
	case c.PeerBufMsgs < 1:
		return c, cli.Usagef("-peer-buffer-msgs %d: want at least 1", c.PeerBufMsgs)
	case c.PeerBufBytes == 0 || c.PeerBufBytes < -1:
		return c, cli.Usagef("-peer-buffer-bytes %d: want > 0, or -1 for no byte limit", c.PeerBufBytes)
	case c.ShutdownTimeout <= 0:
		return c, cli.Usagef("-shutdown-timeout %v: want > 0", c.ShutdownTimeout)
	case c.NativeTrim < 0:
		return c, cli.Usagef("-native-trim %v: want >= 0", c.NativeTrim)
	}
	if _, err := cli.LogLevel(c.LogLevel); err != nil {
		return c, cli.UsageError{Err: err}
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return c, cli.Usagef("-log-format %q: want auto, text or json", c.LogFormat)
	}
	return c, nil
}

// run is gate-broker: `health` and `version` subcommands, else parse the
// configuration and serve until ctx is done. -h and -version print on
// stdout, everything else on stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "health":
			return health(ctx, args[1:], getenv, stdout, stderr)
		case "version":
			cli.PrintVersion(stdout, "gate-broker")
			return nil
		}
	}
	cfg, err := parseConfig(args, getenv, stdout, stderr)
	if err != nil {
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
		LogFormat:   cfg.LogFormat,
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
	// Spans (when an OTEL_* exporter is configured), per-request Debug
	// logs and latency metrics come from observers on the broker's loop:
	// none costs a goroutine per request.
	_, noTracing := tel.TracerProvider.(noop.TracerProvider)
	b := telemetry.ReadBuild()
	logger.LogAttrs(ctx, slog.LevelInfo, "gate-broker config",
		slog.String("version", b.Version), slog.String("revision", b.ShortRevision()), slog.String("goversion", b.GoVersion),
		slog.String("frontend", cfg.Frontend), slog.String("backend", cfg.Backend),
		slog.Duration("heartbeat", cfg.Heartbeat), slog.Int("liveness", cfg.Liveness),
		slog.Int("queue_limit", cfg.QueueLimit), slog.Duration("queue_timeout", cfg.QueueTimeout), slog.Int("hwm", cfg.HWM),
		slog.Int64("max_msg_size", cfg.MaxMsgSize), slog.Int("peer_buffer_msgs", cfg.PeerBufMsgs),
		slog.Int64("peer_buffer_bytes", cfg.PeerBufBytes), slog.Duration("shutdown_timeout", cfg.ShutdownTimeout),
		slog.String("metrics_addr", tel.MetricsAddr()), slog.Bool("tracing", !noTracing))

	bm, err := tel.BrokerMetrics()
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
		broker.WithHWM(cfg.HWM),
		broker.WithPeerBuffer(cfg.PeerBufMsgs, cfg.PeerBufBytes),
		broker.WithLogger(logger),
	}
	sec, err := cfg.Curve.options(logger)
	if err != nil {
		return err
	}
	opts = append(opts, sec...)
	// One seam: metrics from the broker's events, spans and per-request
	// logs from the request observer (nil when there is nothing to do).
	opts = append(opts, broker.WithObserver(bm, tel.BrokerObserver()))
	br, err := broker.New(opts...)
	if err != nil {
		return err
	}
	current.Store(br)
	if err := tel.RegisterBroker(br); err != nil {
		return err
	}

	errc := make(chan error, 1)
	go func() { errc <- br.Serve(context.Background()) }()
	// libzmq's per-connection memory goes back to the OS after clients leave.
	trimCtx, stopTrim := context.WithCancel(context.Background())
	trimDone := make(chan struct{})
	go func() { defer close(trimDone); broker.TrimNativeMemory(trimCtx, cfg.NativeTrim) }()
	defer func() { stopTrim(); <-trimDone }()
	select {
	case err = <-errc: // failed to start or stopped by itself
	case <-ctx.Done():
		logger.LogAttrs(context.Background(), slog.LevelInfo, "shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		if serr := br.Shutdown(sctx); serr != nil {
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
func health(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if !hasFlag(args, "frontend") && (hasFlag(args, "addr") || getenv("GATE_METRICS_ADDR") != "") {
		return cli.Health(ctx, "gate-broker health", cli.DefaultHealthAddr, args, getenv, stdout, stderr)
	}
	return keepalive(ctx, args, getenv, stdout, stderr)
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
func keepalive(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gate-broker health", flag.ContinueOnError)
	f := cli.NewFlags(fs, getenv).Output(stdout, stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: gate-broker health [-frontend ENDPOINT | -addr HOST:PORT [-path /healthz]] [-timeout D]\n\n"+
			"Without -addr (or GATE_METRICS_ADDR) it sends Gate.keepalive to -frontend;\n"+
			"with them it GETs http://ADDR/healthz (-path /readyz for readiness).\n\n")
		fs.PrintDefaults()
	}
	endpoint := f.String("frontend", "GATE_FRONTEND", broker.DefaultFrontend, "broker client endpoint")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := f.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("health: unexpected arguments %q", fs.Args())
	}
	if err := keepaliveProbe(ctx, *endpoint, *timeout, getenv); err != nil {
		fmt.Fprintf(stderr, "gate-broker health: %v\n", err)
		return cli.ExitError{Code: 1}
	}
	fmt.Fprintf(stdout, "ok %s\n", *endpoint)
	return nil
}

// keepaliveProbe sends Gate.keepalive(b"heartbeat") to the broker at
// endpoint and succeeds if it answers bin "200" within timeout.
func keepaliveProbe(ctx context.Context, endpoint string, timeout time.Duration, getenv func(string) string) error {
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
	body, err := codec.EncodeRequestBody("keepalive", []any{[]byte("heartbeat")}, nil)
	if err != nil {
		return err
	}
	req := wire.ClientRequest{Service: wire.InternalService, RequestID: rid, Body: body}
	if _, err := s.SendMessage(req.Frames()); err != nil {
		return fmt.Errorf("health: send: %w", err)
	}
	want := codec.ResultMap(codec.AppendBin(nil, []byte("200"))) // keepalive's answer: b"200"
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
		return nil
	}
}
