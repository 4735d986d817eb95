package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/gatetest"
)

func TestMain(m *testing.M) {
	if gate.RunChildIfRequested() {
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestRunServesDemo(t *testing.T) {
	const hb = 500 * time.Millisecond
	h := gatetest.StartBrokerOn(t, gatetest.IPC, broker.WithHeartbeat(hb))
	env := map[string]string{"GATE_HEARTBEAT": "500ms", "GATE_SERVICE": "demo"}
	metricsPort := gatetest.FreePortString(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs gatetest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-broker", h.Backend, "-workers", "2", "-procs", "1", "-metrics-addr", "127.0.0.1:" + metricsPort,
			"-log-format", "json"}, func(k string) string { return env[k] }, io.Discard, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	})

	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(zctx), gate.WithHeartbeat(hb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		zctx.SetRetryAfterEINTR(false)
		zctx.Term()
	})
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	for {
		if _, err := c.Call(cctx, "demo.echo", 1); err == nil {
			break
		} else if cctx.Err() != nil {
			t.Fatalf("demo never became callable: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := c.Call(cctx, "demo.cpu", 1000); err != nil || len(got.(string)) != 64 {
		t.Fatalf("cpu(1000) = %v, %v", got, err)
	}
	for _, m := range []string{"demo.blob", "demo.huge"} {
		if got, err := c.Call(cctx, m, 100000); err != nil || len(got.([]byte)) != 100000 {
			t.Fatalf("%s(100000) = %T, %v", m, got, err)
		}
	}
	var ge *gate.Error
	if _, err := c.Call(cctx, "demo.fail", "boom!"); !errors.As(err, &ge) || ge.Message != "ValueError('boom!')" {
		t.Fatalf("fail = %v", err)
	}
	s, err := c.Stream(cctx, "demo.count", 5)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("count(5) gave %d items", n)
	}

	// Telemetry: ready once connected, RED metrics per method, health.
	base := "http://127.0.0.1:" + metricsPort
	if code, body := gatetest.MustGet(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200 with both workers connected", code, body)
	}
	_, body := gatetest.MustGet(t, base+"/metrics")
	for _, want := range []string{`rpc_server_call_duration_seconds_count{rpc_method="demo/echo"`, `rpc_method="demo/huge"`,
		"gaterpc_worker_stream_messages_total", `gaterpc_build_info{`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var out bytes.Buffer
	if err := run(cctx, []string{"health", "-addr", "0.0.0.0:" + metricsPort}, func(string) string { return "" }, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "ok ") {
		t.Errorf("health = %v, %q", err, out.String())
	}
	if err := run(cctx, []string{"health", "-path", "/readyz"}, func(k string) string { return map[string]string{"GATE_METRICS_ADDR": ":" + metricsPort}[k] }, io.Discard, io.Discard); err != nil {
		t.Errorf("health via GATE_METRICS_ADDR, /readyz = %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"gate-demo-worker starting"`) {
		t.Errorf("-log-format json: logs are not JSON:\n%s", logs.String())
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
		code int
	}{
		{"bad flag", []string{"-nope"}, nil, "flag provided but not defined", 2},
		{"bad env", nil, map[string]string{"GATE_WORKERS": "many"}, "GATE_WORKERS", 2},
		{"bad log level", []string{"-log-level", "loud", "-procs", "0"}, nil, "log level", 2},
		{"bad log format", []string{"-log-format", "xml", "-procs", "0"}, nil, "xml", 2},
		{"extra args", []string{"extra"}, nil, "unexpected arguments", 2},
		{"bad settings", nil, map[string]string{"GATE_HEARTBEAT": "x"}, "GATE_HEARTBEAT", 2},
		{"bad hwm", nil, map[string]string{"GATE_HWM": "lots"}, "GATE_HWM", 2},
		{"zero workers", []string{"-workers", "0"}, nil, "-workers 0", 2},
		{"zero capacity", []string{"-capacity", "0"}, nil, "-capacity 0", 2},
		{"colon service", []string{"-service", "a:b", "-procs", "0"}, nil, "must not contain ':'", 1},
		{"curve server key only", []string{"-curve-server-key", "/nonexistent/server.pub", "-procs", "0"}, nil, "/nonexistent/server.pub", 2},
		{"curve secret key only", nil, map[string]string{"GATE_CURVE_SECRET_KEY": strings.Repeat("0", 40)}, "GATE_CURVE_SERVER_KEY", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, io.Discard, &out)
			code := cli.ExitCode("gate-demo-worker", err, &out)
			if code != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("run(%v, %v) = %v, exit %d, stderr %q; want exit %d mentioning %q", tt.args, tt.env, err, code, out.String(), tt.code, tt.want)
			}
		})
	}
}

// TestHelpVersion: -h, -version and `version` answer on stdout with exit
// 0; the usage names the subcommands; health defaults to the worker's
// own metrics port.
func TestHelpVersion(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--version"}, {"version"}, {"health", "-h"}} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
		if code := cli.ExitCode("gate-demo-worker", err, &errb); code != 0 || out.Len() == 0 || errb.Len() != 0 {
			t.Errorf("gate-demo-worker %q: exit %d, stdout %q, stderr %q; want exit 0, all on stdout", args, code, out.String(), errb.String())
		}
		switch args[0] {
		case "-h":
			for _, want := range []string{"gate-demo-worker ", "health", "version", "-log-format", "auto (tint text on a terminal, JSON otherwise)"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("-h lacks %q:\n%s", want, out.String())
				}
			}
		case "version", "--version":
			if !strings.HasPrefix(out.String(), "gate-demo-worker ") || !strings.Contains(out.String(), " go1.") {
				t.Errorf("%s = %q", args[0], out.String())
			}
		case "health":
			if !strings.Contains(out.String(), `(default "127.0.0.1:9101")`) {
				t.Errorf("health -h: want the worker's metrics port as the default:\n%s", out.String())
			}
		}
	}
}
