// Package cli holds what the gate binaries share on the command line:
// flags whose defaults come from GATE_* environment variables (flag, then
// env, then default), log level parsing, the exit-code convention, and the
// `health` subcommand that probes a binary's /healthz endpoint.
//
//	fs := flag.NewFlagSet("gate-demo-worker", flag.ContinueOnError)
//	f := cli.NewFlags(fs, getenv)
//	addr := f.String("metrics-addr", "GATE_METRICS_ADDR", "", "listen address of /metrics")
//	n := f.Int("workers", "GATE_WORKERS", 1, "number of workers")
//	if err := f.Parse(args); err != nil { return err }
//
// and in run, before parsing the binary's own flags:
//
//	if len(args) > 0 && args[0] == "health" {
//		return cli.Health(ctx, "gate-demo-worker health", args[1:], getenv, stdout, stderr)
//	}
//
// Everything here is safe for concurrent use except Flags, which belongs
// to the goroutine parsing the command line.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/telemetry"
)

// Flags binds flags of a flag.FlagSet whose defaults are taken from
// environment variables. Malformed environment values are collected and
// reported by Parse (or Err), so that a bad GATE_* value is an error, not a
// silent default.
type Flags struct {
	FS     *flag.FlagSet
	getenv func(string) string
	err    error

	stdout, stderr io.Writer // set by Output
	version        *bool     // set by VersionFlag
	name           string
}

// NewFlags returns Flags over fs reading the environment through getenv
// (os.Getenv in main, a map in tests; nil means an empty environment).
func NewFlags(fs *flag.FlagSet, getenv func(string) string) *Flags {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Flags{FS: fs, getenv: getenv}
}

func usage(u, env string) string {
	if env == "" {
		return u
	}
	return u + " (env " + env + ")"
}

func (f *Flags) env(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	v := f.getenv(name)
	return v, v != ""
}

func (f *Flags) fail(env, v string, err error) {
	f.err = errors.Join(f.err, fmt.Errorf("%s=%q: %w", env, v, err))
}

// String defines a string flag defaulting to $env, else def.
func (f *Flags) String(name, env, def, u string) *string {
	if v, ok := f.env(env); ok {
		def = v
	}
	return f.FS.String(name, def, usage(u, env))
}

// Duration defines a duration flag defaulting to $env, else def. The
// variable is parsed as gate.SettingsFromEnv parses durations: Go syntax
// ("5s", "250ms") or a bare number of seconds ("30", "0.5").
func (f *Flags) Duration(name, env string, def time.Duration, u string) *time.Duration {
	if v, ok := f.env(env); ok {
		d, err := parseDuration(v)
		if err != nil {
			f.fail(env, v, err)
		} else {
			def = d
		}
	}
	return f.FS.Duration(name, def, usage(u, env))
}

func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 || n > float64(1<<62)/float64(time.Second) {
			return 0, errors.New("out of range")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration (want e.g. 5s, 250ms or a number of seconds)")
	}
	return d, nil
}

// Int defines an int flag defaulting to $env, else def.
func (f *Flags) Int(name, env string, def int, u string) *int {
	if v, ok := f.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.fail(env, v, errors.New("not an integer"))
		} else {
			def = n
		}
	}
	return f.FS.Int(name, def, usage(u, env))
}

// Float defines a float64 flag defaulting to $env, else def.
func (f *Flags) Float(name, env string, def float64, u string) *float64 {
	if v, ok := f.env(env); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.fail(env, v, errors.New("not a number"))
		} else {
			def = n
		}
	}
	return f.FS.Float64(name, def, usage(u, env))
}

// Bool defines a bool flag defaulting to $env (strconv.ParseBool), else def.
func (f *Flags) Bool(name, env string, def bool, u string) *bool {
	if v, ok := f.env(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.fail(env, v, errors.New("not a boolean"))
		} else {
			def = b
		}
	}
	return f.FS.Bool(name, def, usage(u, env))
}

// Err returns the environment errors seen so far.
func (f *Flags) Err() error { return f.err }

// Output makes Parse write the usage asked for with -h (or -help) to
// stdout, and everything else the flag package prints (a mistake and the
// usage after it) to stderr. Usage functions must write to FS.Output().
// Without Output, everything goes to FS's own output.
func (f *Flags) Output(stdout, stderr io.Writer) *Flags {
	f.stdout, f.stderr = stdout, stderr
	f.FS.SetOutput(stderr)
	return f
}

// VersionFlag defines -version (also spelt --version): Parse then prints
// "name VERSION" (see [PrintVersion]) to stdout and returns flag.ErrHelp,
// which the binaries treat as "answered, exit 0".
func (f *Flags) VersionFlag(name string) {
	f.name = name
	f.version = f.FS.Bool("version", false, "print the version and exit")
}

// Parse reports environment errors (a [UsageError]), then parses args.
// A malformed command line is an ExitError{2} (the flag package has
// printed the mistake and the usage); -h is flag.ErrHelp.
func (f *Flags) Parse(args []string) error {
	if f.err != nil {
		return UsageError{f.err}
	}
	return f.parse(args)
}

func (f *Flags) parse(args []string) error {
	var buf bytes.Buffer
	if f.stdout != nil {
		f.FS.SetOutput(&buf)
	}
	err := f.FS.Parse(args)
	if f.stdout != nil {
		f.FS.SetOutput(f.stderr)
		w := f.stderr
		if errors.Is(err, flag.ErrHelp) {
			w = f.stdout
		}
		_, _ = buf.WriteTo(w)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return ExitError{Code: 2}
	case f.version != nil && *f.version:
		w := f.stdout
		if w == nil {
			w = f.FS.Output()
		}
		PrintVersion(w, f.name)
		return flag.ErrHelp
	}
	return nil
}

// PrintVersion writes "name VERSION" to w: the module version, VCS
// revision and time, Go version, platform and libzmq version of this
// binary (telemetry.ReadBuild).
func PrintVersion(w io.Writer, name string) {
	fmt.Fprintf(w, "%s %s\n", name, telemetry.ReadBuild())
}

// VersionLine is the version as the first line of a usage text shows it.
func VersionLine(name string) string {
	return name + " " + telemetry.ReadBuild().String()
}

// Settings returns gate.SettingsFromEnv(getenv), with a malformed or
// invalid GATE_* value reported as a [UsageError] (exit 2).
func Settings(getenv func(string) string) (gate.Settings, error) {
	s, err := gate.SettingsFromEnv(getenv)
	if err != nil {
		return s, UsageError{err}
	}
	return s, nil
}

// ParseInterspersed is Parse for commands that take positional arguments
// mixed with flags (`call demo.echo 1 -kw a=1 2`): arguments naming a
// defined flag are parsed as flags, everything else (including "-1", a
// negative number) is returned in order as positional. "--" ends the
// flags. A flag's value may be attached (-kw=a=1) or follow (-kw a=1).
func (f *Flags) ParseInterspersed(args []string) ([]string, error) {
	if f.err != nil {
		return nil, UsageError{f.err}
	}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		name, hasValue := flagName(a)
		fl := f.FS.Lookup(name)
		if name == "" || (fl == nil && name != "h" && name != "help") {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		if fl != nil && !hasValue && !isBool(fl) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := f.parse(flags); err != nil {
		return nil, err
	}
	return append(pos, f.FS.Args()...), nil
}

func flagName(a string) (name string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false
	}
	a = strings.TrimPrefix(a[1:], "-")
	name, _, hasValue = strings.Cut(a, "=")
	return name, hasValue
}

func isBool(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// LogLevel parses "debug", "info", "warn", "error" (or slog's "info+2").
func LogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// ExitError makes main exit with Code without printing anything more: the
// command has already reported the failure (a remote exception on stderr,
// a failed health check).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// ExitCode reports err the way every gate binary does and returns the
// process exit code: 0 for nil and for -h, 2 for a usage error (already
// printed by the flag package), ExitError's code, else 1 after printing
// "name: err" to stderr.
func ExitCode(name string, err error, stderr io.Writer) int {
	var ee ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, new(UsageError)):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// UsageError is a command-line mistake (exit code 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}
