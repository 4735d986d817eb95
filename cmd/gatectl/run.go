package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/telemetry"
	"github.com/gaterpc/gate/telemetry/setup"
)

// defaultBroker is the default of -broker (GATE_BROKER). The default of
// -timeout is gate.Settings.ReplyTimeout (GATE_REPLY_TIMEOUT, 60s).
const defaultBroker = "tcp://127.0.0.1:5555"

// globals are the flags every subcommand accepts, before or after its
// name.
type globals struct {
	broker  string
	timeout time.Duration
	json    bool
	verbose bool
}

// register defines the global flags on a subcommand's fs with their
// current values as defaults, so they may also follow the command name.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.broker, "broker", g.broker, "broker frontend endpoint (env GATE_BROKER)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline of a call, or of a whole stream (env GATE_REPLY_TIMEOUT)")
	fs.BoolVar(&g.json, "json", g.json, "machine-readable JSON output")
	fs.BoolVar(&g.verbose, "v", g.verbose, "verbose: tracebacks of remote exceptions, debug logs")
}

// app is one invocation of gatectl.
type app struct {
	ctx            context.Context
	getenv         func(string) string
	stdout, stderr io.Writer
	g              globals
	settings       gate.Settings // from the GATE_* environment

	// tel traces the client hop when OTEL_* asks for it; made by the
	// first client (tracing), flushed when run returns.
	tel     *setup.Telemetry
	telMade bool
	curve   cli.CurveFlags // security.go: -curve-server-key, -curve-secret-key
}

const usageText = `gatectl — call, inspect and load-test gate-rpc services through a broker.

Usage:
  gatectl [global flags] COMMAND [flags] [args]

Commands:
  call SERVICE.METHOD [ARG...] [-kw key=value...] [-d @FILE|-|JSON] [-o FILE]
                                                    call a method, print the result as JSON
  stream SERVICE.METHOD [ARG...] [-kw key=value...] [-d ...] [-o FILE]
                                                    call a streaming method, one JSON line per item
  services [SERVICE]                                per service: workers, capacity, in flight, queued,
                                                    oldest queued age, calls, errors; SERVICE: per worker
  info                                              the broker's id and worker services
  interfaces SERVICE                                a service's methods (get_interfaces)
  bench [-service S -method M -n N | -duration D -concurrency C -connections K -size BYTES | -d ...]
                                                    closed-loop load with a latency summary
  demo                                              broker + demo workers + traffic in one process
  health [-addr HOST:PORT]                          GET /healthz of a gate binary, exit 0 on 200
  keygen [-if-missing] [-allow FILE [-services S,..]] PREFIX
                                                    write a CURVE key pair PREFIX.key (0600) and PREFIX.pub
  version                                           print the version
  help [COMMAND]                                    this text, or a command's flags

Arguments are JSON values (1, 2.5, true, null, "s", [1,2], {"a":1},
{"$bytes":"<base64>"} for bytes); words that are not JSON are strings.
-d takes the arguments as one JSON document instead: a bare array of
positional arguments, or {"args": [...], "kwargs": {...}}; -d @FILE reads
it from FILE, -d - from stdin. -o FILE writes the result's bytes (or its
JSON) to FILE.

Every GATE_* variable of gate.SettingsFromEnv is validated (exit 2 on a
bad value); OTEL_* configures trace export. Exit codes: 0 success, 1
failure, 2 usage error.

Global flags (also accepted after COMMAND):
`

// run is gatectl: it parses the global flags (flag, then GATE_* env, then
// default) and runs the subcommand named by the first argument.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a := &app{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr}
	defer func() { a.shutdown(a.tel) }()
	// The CURVE variables name key files that may not exist yet (keygen
	// makes them): they are read when a client is made (a.client), after
	// the -curve-* flags are parsed.
	settings, err := cli.Settings(cli.WithoutCurve(getenv))
	if err != nil {
		return err
	}
	a.settings = settings
	fs := flag.NewFlagSet("gatectl", flag.ContinueOnError)
	f := cli.NewFlags(fs, getenv).Output(stdout, stderr)
	a.curve.Register(fs)
	a.getenv = a.curve.Getenv(getenv)
	broker := f.String("broker", "GATE_BROKER", defaultBroker, "broker frontend endpoint")
	timeout := fs.Duration("timeout", settings.ReplyTimeout, "deadline of a call, or of a whole stream (env GATE_REPLY_TIMEOUT)")
	jsonOut := fs.Bool("json", false, "machine-readable JSON output")
	verbose := fs.Bool("v", false, "verbose: tracebacks of remote exceptions, debug logs")
	f.VersionFlag("gatectl")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\n%s", cli.VersionLine("gatectl"), usageText)
		fs.PrintDefaults()
	}
	if err := f.Parse(args); err != nil {
		return err
	}
	a.g = globals{broker: *broker, timeout: *timeout, json: *jsonOut, verbose: *verbose}
	if a.g.timeout <= 0 {
		return cli.Usagef("-timeout %v: want > 0", a.g.timeout)
	}
	if fs.NArg() == 0 {
		fs.SetOutput(stderr)
		fs.Usage()
		return cli.Usagef("missing command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "call":
		return a.call(rest, false)
	case "stream":
		return a.call(rest, true)
	case "services":
		return a.services(rest)
	case "info":
		return a.info(rest)
	case "interfaces":
		return a.interfaces(rest)
	case "bench":
		return a.bench(rest)
	case "demo":
		return a.demo(rest)
	case "health":
		return cli.Health(ctx, "gatectl health", cli.DefaultHealthAddr, rest, getenv, stdout, stderr)
	case "version":
		cli.PrintVersion(stdout, "gatectl")
		return nil
	case "keygen":
		return a.keygen(rest)
	case "help":
		if len(rest) > 0 && rest[0] != "help" {
			return run(ctx, append([]string{rest[0], "-h"}, rest[1:]...), getenv, stdout, stderr)
		}
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	}
	fs.SetOutput(stderr)
	fs.Usage()
	return cli.Usagef("unknown command %q", cmd)
}

// flags returns a subcommand's flags with the global flags defined on
// them; -h prints on stdout, mistakes on stderr.
func (a *app) flags(name string) *cli.Flags {
	fs := flag.NewFlagSet("gatectl "+name, flag.ContinueOnError)
	f := cli.NewFlags(fs, a.getenv).Output(a.stdout, a.stderr)
	a.g.register(fs)
	a.curve.Register(fs)
	return f
}

// logger is what library code logs through: warnings and errors on
// stderr (everything with -v).
func (a *app) logger() *slog.Logger {
	lvl := slog.LevelWarn
	if a.g.verbose {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
}

// client probes the broker (probeBroker: fail at once when nothing
// listens at -broker), then connects with the GATE_* settings, the global
// timeout and the given options (later ones win). Unless instrumented
// (bench -metrics-addr brings its own middleware), the client hop is
// traced when OTEL_* configures an exporter, with methods as the span
// names (run flushes the spans when the command returns). The returned
// function closes the client.
func (a *app) client(instrumented bool, methods []string, opts ...gate.ClientOption) (*gate.Client, func(), error) {
	if err := probeBroker(a.ctx, a.g.broker, a.g.timeout); err != nil {
		return nil, nil, err
	}
	settings := a.settings
	if err := a.curve.Apply(&settings, a.getenv); err != nil {
		return nil, nil, cli.UsageError{Err: err}
	}
	all := []gate.ClientOption{gate.WithSettings(settings), gate.WithLogger(a.logger()), gate.WithTimeout(a.g.timeout)}
	var tel *setup.Telemetry
	if !instrumented {
		var err error
		if tel, err = a.tracing(); err != nil {
			return nil, nil, err
		}
		if tel != nil {
			all = append(all, gate.WithMiddleware(telemetry.Tracing(telemetry.WithTracerProvider(tel.TracerProvider),
				telemetry.WithPropagators(tel.Propagator), telemetry.WithMethods(methods...), telemetry.WithServerAddress(a.g.broker))))
		}
	}
	c, err := gate.NewClient(a.g.broker, append(all, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}

// tracing returns the telemetry of the command (made once) when OTEL_*
// configures a trace exporter, else nil.
func (a *app) tracing() (*setup.Telemetry, error) {
	if a.telMade {
		return a.tel, nil
	}
	a.telMade = true
	lvl := slog.LevelWarn
	if a.g.verbose {
		lvl = slog.LevelDebug
	}
	tel, err := setup.New(a.ctx, setup.Config{ServiceName: "gatectl", Role: gate.RoleClient.String(),
		LogFormat: "text", LogLevel: lvl, LogWriter: a.stderr, NoGlobals: true})
	if err != nil {
		return nil, cli.UsageError{Err: err}
	}
	if _, off := tel.TracerProvider.(noop.TracerProvider); off {
		a.shutdown(tel)
		return nil, nil
	}
	a.tel = tel
	return tel, nil
}

// shutdown flushes tel (exports the buffered spans); nil is a no-op.
func (a *app) shutdown(tel *setup.Telemetry) {
	if tel == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		fmt.Fprintf(a.stderr, "gatectl: telemetry: %v\n", err)
	}
}

// callCtx bounds one call by the global timeout.
func (a *app) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.g.timeout)
}

// printJSON writes v as JSON to stdout (compact: one line).
func (a *app) printJSON(v any, compact bool) error {
	b, err := marshal(v, compact)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// remote reports a remote exception (an *gate.Error) on stderr — class and
// repr, the traceback with -v, a JSON object with -json — and turns it into
// exit code 1. Other errors are returned unchanged.
func (a *app) remote(err error) error {
	var ge *gate.Error
	if !errors.As(err, &ge) {
		return err
	}
	class := ge.Class
	if class == "" {
		class = gate.Errorf(ge.Code, "").Class
	}
	if a.g.json {
		b, _ := marshal(map[string]any{"error": map[string]any{
			"class": class, "message": ge.Message, "code": ge.Code.String(), "traceback": ge.Traceback,
		}}, true)
		fmt.Fprintf(a.stderr, "%s\n", b)
	} else {
		fmt.Fprintf(a.stderr, "%s: %s\n", class, ge.Message)
		if a.g.verbose && ge.Traceback != "" {
			fmt.Fprintln(a.stderr, strings.TrimRight(ge.Traceback, "\n"))
		}
	}
	return cli.ExitError{Code: 1}
}
