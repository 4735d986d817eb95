package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFlagsPrecedence(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantDur time.Duration
		wantErr string
	}{
		{name: "default", want: "def", wantDur: time.Second},
		{name: "env", env: map[string]string{"X_S": "env", "X_D": "2s"}, want: "env", wantDur: 2 * time.Second},
		{name: "flag beats env", args: []string{"-s", "flag", "-d", "3s"}, env: map[string]string{"X_S": "env", "X_D": "2s"}, want: "flag", wantDur: 3 * time.Second},
		{name: "bad env", env: map[string]string{"X_D": "soon"}, wantErr: `X_D="soon"`},
		{name: "bad env int", env: map[string]string{"X_I": "many"}, wantErr: `X_I="many": not an integer`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := NewFlags(fs, func(k string) string { return tt.env[k] })
			s := f.String("s", "X_S", "def", "a string")
			d := f.Duration("d", "X_D", time.Second, "a duration")
			f.Int("i", "X_I", 1, "an int")
			err := f.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *s != tt.want || *d != tt.wantDur {
				t.Fatalf("Parse(%q) with %v = %q, %v, %v; want %q, %v", tt.args, tt.env, *s, *d, err, tt.want, tt.wantDur)
			}
			if u := fs.Lookup("s").Usage; u != "a string (env X_S)" {
				t.Errorf("usage = %q, want the env var named", u)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		wantPos []string
		wantKW  []string
		wantV   bool
	}{
		{"mixed", []string{"svc.m", "1", "-kw", "a=1", "two", "-v", "-kw=b=2"}, []string{"svc.m", "1", "two"}, []string{"a=1", "b=2"}, true},
		{"negative numbers are positional", []string{"svc.m", "-1", "-2.5"}, []string{"svc.m", "-1", "-2.5"}, nil, false},
		{"double dash flag", []string{"--kw", "a=1", "x"}, []string{"x"}, []string{"a=1"}, false},
		{"end of flags", []string{"x", "--", "-kw", "-v"}, []string{"x", "-kw", "-v"}, nil, false},
		{"unknown dash word", []string{"-nope", "x"}, []string{"-nope", "x"}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var kws []string
			fs.Func("kw", "k=v", func(s string) error { kws = append(kws, s); return nil })
			v := fs.Bool("v", false, "verbose")
			pos, err := NewFlags(fs, nil).ParseInterspersed(tt.args)
			if err != nil || !slices.Equal(pos, tt.wantPos) || !slices.Equal(kws, tt.wantKW) || *v != tt.wantV {
				t.Fatalf("ParseInterspersed(%q) = %q, kw %q, v %v, %v; want %q, %q, %v", tt.args, pos, kws, *v, err, tt.wantPos, tt.wantKW, tt.wantV)
			}
		})
	}
}

func TestHealthURL(t *testing.T) {
	for _, tt := range []struct{ addr, path, want string }{
		{"127.0.0.1:9100", "/healthz", "http://127.0.0.1:9100/healthz"},
		{":9101", "/healthz", "http://127.0.0.1:9101/healthz"},
		{"0.0.0.0:9102", "readyz", "http://127.0.0.1:9102/readyz"},
		{"[::]:9103", "/healthz", "http://127.0.0.1:9103/healthz"},
		{"http://broker:9100", "/healthz", "http://broker:9100/healthz"},
		{"[::1]:9100", "/healthz", "http://[::1]:9100/healthz"},
	} {
		if got := HealthURL(tt.addr, tt.path); got != tt.want {
			t.Errorf("HealthURL(%q, %q) = %q, want %q", tt.addr, tt.path, got, tt.want)
		}
	}
}

func TestHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			http.Error(w, "not ready: worker 0 not connected", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var out, errb bytes.Buffer
	if err := Health(ctx, "x health", DefaultHealthAddr, []string{"-addr", addr}, nil, &out, &errb); err != nil || out.String() != "ok http://"+addr+"/healthz\n" {
		t.Fatalf("Health = %v, %q, %q", err, out.String(), errb.String())
	}
	errb.Reset()
	err := Health(ctx, "x health", DefaultHealthAddr, []string{"-path", "/readyz"}, func(k string) string {
		return map[string]string{"GATE_METRICS_ADDR": addr}[k]
	}, io.Discard, &errb)
	var ee ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(errb.String(), "503") || !strings.Contains(errb.String(), "worker 0 not connected") {
		t.Fatalf("Health(/readyz) = %v, stderr %q; want exit 1 with the reason", err, errb.String())
	}
	if err := Health(ctx, "x health", DefaultHealthAddr, []string{"extra"}, nil, io.Discard, io.Discard); !errors.As(err, new(UsageError)) {
		t.Fatalf("Health(extra) = %v, want a UsageError", err)
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err     error
		code    int
		printed bool
	}{
		{nil, 0, false},
		{flag.ErrHelp, 0, false},
		{ExitError{3}, 3, false},
		{Usagef("bad %s", "flag"), 2, true},
		{errors.New("boom"), 1, true},
	} {
		var b bytes.Buffer
		if got := ExitCode("cmd", tt.err, &b); got != tt.code || (b.Len() > 0) != tt.printed {
			t.Errorf("ExitCode(%v) = %d, printed %q; want %d, printed %v", tt.err, got, b.String(), tt.code, tt.printed)
		}
	}
}

func TestLogLevel(t *testing.T) {
	if l, err := LogLevel("warn"); err != nil || l.String() != "WARN" {
		t.Errorf("LogLevel(warn) = %v, %v", l, err)
	}
	if _, err := LogLevel("loud"); err == nil {
		t.Error("LogLevel(loud): want an error")
	}
}

func TestFlagsOutputAndVersion(t *testing.T) {
	for _, tt := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // substrings; "" means must be empty
	}{
		{"help on stdout", []string{"-h"}, 0, "usage of t", ""},
		{"mistake on stderr", []string{"-nope"}, 2, "", "flag provided but not defined: -nope"},
		{"version", []string{"--version"}, 0, " libzmq ", ""},
		{"plain", []string{"-d", "2s"}, 0, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := NewFlags(fs, nil).Output(&out, &errb)
			fs.Usage = func() { io.WriteString(fs.Output(), "usage of t\n") }
			f.VersionFlag("t")
			f.Duration("d", "", time.Second, "a duration")
			err := f.Parse(tt.args)
			if got := ExitCode("t", err, io.Discard); got != tt.code {
				t.Fatalf("Parse(%q) = %v: exit %d, want %d", tt.args, err, got, tt.code)
			}
			for _, c := range []struct {
				got, want, name string
			}{{out.String(), tt.stdout, "stdout"}, {errb.String(), tt.stderr, "stderr"}} {
				if (c.want == "" && c.got != "") || !strings.Contains(c.got, c.want) {
					t.Errorf("Parse(%q): %s = %q, want %q", tt.args, c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestEnvDurationLikeSettings(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{{"1.5", 1500 * time.Millisecond, true}, {"250ms", 250 * time.Millisecond, true}, {"-1", 0, false}, {"soon", 0, false}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f := NewFlags(fs, func(string) string { return tt.v })
		d := f.Duration("d", "X_D", time.Second, "")
		err := f.Parse(nil)
		if (err == nil) != tt.ok || (tt.ok && *d != tt.want) {
			t.Errorf("X_D=%q: %v, %v; want %v (ok %v)", tt.v, *d, err, tt.want, tt.ok)
		}
		if err != nil && !errors.As(err, new(UsageError)) {
			t.Errorf("X_D=%q: error %v is not a UsageError (exit 2)", tt.v, err)
		}
	}
}
