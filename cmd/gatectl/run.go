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

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
)

// Defaults of the global flags.
const (
	defaultBroker  = "tcp://127.0.0.1:5555"
	defaultTimeout = 10 * time.Second
)

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
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "per-call timeout (env GATE_TIMEOUT)")
	fs.BoolVar(&g.json, "json", g.json, "machine-readable JSON output")
	fs.BoolVar(&g.verbose, "v", g.verbose, "verbose: tracebacks of remote exceptions, debug logs")
}

// app is one invocation of gatectl.
type app struct {
	ctx            context.Context
	getenv         func(string) string
	stdout, stderr io.Writer
	g              globals
	curve          cli.CurveFlags // security.go; read through getenv
}

const usageText = `gatectl — call, inspect and load-test gate-rpc services through a broker.

Usage:
  gatectl [global flags] COMMAND [flags] [args]

Commands:
  call SERVICE.METHOD [ARG...] [-kw key=value...]   call a method, print the result as JSON
  stream SERVICE.METHOD [ARG...] [-kw key=value...] call a streaming method, one JSON line per item
  services                                          services the broker knows, with descriptions
  info                                              the broker's id and worker services
  interfaces SERVICE                                a service's methods (get_interfaces)
  bench [-service S -method M -concurrency N -duration D -size BYTES ...]
                                                    closed-loop load with a latency summary
  demo                                              broker + demo workers + traffic in one process
  health [-addr HOST:PORT]                          GET /healthz of a gate binary, exit 0 on 200
  keygen [-if-missing] [-allow FILE [-services S,..]] PREFIX
                                                    write a CURVE key pair PREFIX.key (0600) and PREFIX.pub

Arguments are JSON values (1, 2.5, true, null, "s", [1,2], {"a":1},
{"$bytes":"<base64>"} for bytes); words that are not JSON are strings.
Run "gatectl COMMAND -h" for a command's flags.

Global flags (also accepted after COMMAND):
`

// run is gatectl: it parses the global flags (flag, then GATE_* env, then
// default) and runs the subcommand named by the first argument.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a := &app{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("gatectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a.curve.Register(fs)
	a.getenv = a.curve.Getenv(getenv)
	f := cli.NewFlags(fs, getenv)
	broker := f.String("broker", "GATE_BROKER", defaultBroker, "broker frontend endpoint")
	timeout := f.Duration("timeout", "GATE_TIMEOUT", defaultTimeout, "per-call timeout")
	jsonOut := fs.Bool("json", false, "machine-readable JSON output")
	verbose := fs.Bool("v", false, "verbose: tracebacks of remote exceptions, debug logs")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
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
		return cli.Health(ctx, "gatectl health", rest, getenv, stdout, stderr)
	case "keygen":
		return a.keygen(rest)
	case "help":
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	}
	fs.Usage()
	return cli.Usagef("unknown command %q", cmd)
}

// flagSet returns a subcommand's flag set with the global flags defined
// on it.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("gatectl "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	a.g.register(fs)
	a.curve.Register(fs)
	return fs
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

// client connects to the broker with the GATE_* settings, the global
// timeout and the given options (later ones win).
func (a *app) client(opts ...gate.CommonOption) (*gate.Client, error) {
	settings, err := gate.SettingsFromEnv(a.getenv)
	if err != nil {
		return nil, err
	}
	all := []gate.ClientOption{gate.WithSettings(settings), gate.WithLogger(a.logger()), gate.WithTimeout(a.g.timeout)}
	for _, o := range opts {
		all = append(all, o)
	}
	return gate.NewClient(a.g.broker, all...)
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
		class = gate.ClassForCode(ge.Code)
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
