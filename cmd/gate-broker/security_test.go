package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/demo"
	"github.com/gaterpc/gate/internal/gatetest"
)

// curveFiles writes a server key and allow-lists admitting c.Client and
// c.Worker (for service demo) into a temporary directory.
func curveFiles(t *testing.T, c gatetest.Curve) (secret, clients, workers string) {
	t.Helper()
	dir := t.TempDir()
	secret = filepath.Join(dir, "server.key")
	if err := gate.WriteKeyPair(secret, filepath.Join(dir, "server.pub"), c.Server); err != nil {
		t.Fatal(err)
	}
	clients, workers = filepath.Join(dir, "clients.list"), filepath.Join(dir, "workers.list")
	if err := os.WriteFile(clients, []byte("# clients\n"+c.Client.Public+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(workers, []byte(c.Worker.Public+" demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return secret, clients, workers
}

// logRecord waits for a JSON log record whose msg contains msg.
func logRecord(t *testing.T, logs *gatetest.Buffer, msg string) map[string]any {
	t.Helper()
	return gatetest.WaitLogRecord(t, logs, strconv.Quote(msg), func(rec map[string]any) bool {
		m, _ := rec["msg"].(string)
		return strings.Contains(m, msg)
	})
}

// startRun runs the broker binary's run with args until cleanup.
func startRun(t *testing.T, args []string, getenv func(string) string) *gatetest.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &gatetest.Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, getenv, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run = %v", err)
		}
	})
	return logs
}

// TestRunCurve: gate-broker with key files admits a listed worker and
// client over CURVE and counts a plain client.
func TestRunCurve(t *testing.T) {
	c := gatetest.NewCurve(t)
	secret, clients, workers := curveFiles(t, c)
	logs := startRun(t, []string{"-frontend", "tcp://127.0.0.1:*", "-backend", "tcp://127.0.0.1:*",
		"-curve-secret-key", secret, "-curve-workers", workers},
		env(map[string]string{"GATE_LOG_FORMAT": "json", "GATE_HEARTBEAT": "200ms", "GATE_CURVE_CLIENTS_FILE": clients}))
	if rec := logRecord(t, logs, "gate-broker CURVE"); rec["server_public_key"] != c.Server.Public {
		t.Fatalf("CURVE log = %v, want server key %s", rec, c.Server.Public)
	}
	rec := logRecord(t, logs, "broker listening")
	front, back := rec["frontend"].(string), rec["backend"].(string)

	svc, err := demo.NewService("demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWorker(back, gate.WithCurve(c.Server.Public, c.Worker), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)
	cl, err := gate.NewClient(front, gate.WithCurve(c.Server.Public, c.Client), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(testTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := cl.Call(ctx, "demo.echo", "hi")
		cancel()
		if err == nil {
			if m, ok := got.(map[string]any); !ok || m["args"] == nil {
				t.Fatalf("echo = %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call over CURVE succeeded: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	plain, err := gate.NewClient(front, gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := plain.Call(ctx, "demo.echo", "hi"); err == nil {
		t.Fatal("a plain client got an answer from a CURVE frontend")
	}
	// A plain peer is refused for its mechanism, or, when it hangs up
	// first, for a handshake cut short.
	if rec := logRecord(t, logs, "peer denied"); rec["socket"] != "frontend" || (rec["reason"] != "mechanism" && rec["reason"] != "handshake") {
		t.Fatalf("denial log = %v, want socket frontend, reason mechanism or handshake", rec)
	}
	// health probes the CURVE frontend with the server's own key pair.
	hctx, hcancel := context.WithTimeout(context.Background(), testTimeout)
	defer hcancel()
	if err := run(hctx, []string{"health", "-frontend", front}, env(map[string]string{"GATE_CURVE_SECRET_KEY_FILE": secret}), io.Discard, io.Discard); err != nil {
		t.Fatalf("health over CURVE = %v", err)
	}
	if err := run(hctx, []string{"health", "-frontend", front, "-timeout", "300ms"}, env(nil), io.Discard, io.Discard); err == nil {
		t.Fatal("a plain health probe got an answer from a CURVE frontend")
	}
}

// TestRunPlainPublicWarns: a plain broker bound beyond loopback says so.
func TestRunPlainPublicWarns(t *testing.T) {
	logs := startRun(t, []string{"-frontend", "tcp://0.0.0.0:*", "-backend", "tcp://127.0.0.1:*"},
		env(map[string]string{"GATE_LOG_FORMAT": "json"}))
	rec := logRecord(t, logs, "IS PLAIN")
	if rec["level"] != "WARN" || rec["socket"] != "frontend" {
		t.Fatalf("plain warning = %v, want WARN for the frontend", rec)
	}
	logRecord(t, logs, "broker listening")
	if strings.Count(logs.String(), "IS PLAIN") != 1 { // the loopback backend is not warned about
		t.Fatalf("a loopback backend was warned about:\n%s", logs.String())
	}
}

func TestRunCurveErrors(t *testing.T) {
	c := gatetest.NewCurve(t)
	secret, clients, workers := curveFiles(t, c)
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	base := []string{"-frontend", "tcp://127.0.0.1:*", "-backend", "tcp://127.0.0.1:*"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing key file", []string{"-curve-secret-key", secret + ".nope", "-curve-workers", workers, "-curve-clients", clients}, "no such file"},
		{"bad key file", []string{"-curve-secret-key", bad, "-curve-workers", workers, "-curve-clients", clients}, "bad.key"},
		{"no worker list", []string{"-curve-secret-key", secret, "-curve-clients", clients}, "-curve-workers"},
		{"no client list", []string{"-curve-secret-key", secret, "-curve-workers", workers}, "-curve-clients"},
		{"list without key", []string{"-curve-workers", workers}, "need -curve-secret-key"},
		{"services on a client key", []string{"-curve-secret-key", secret, "-curve-workers", workers, "-curve-clients", workers}, "worker keys only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(ctx, append(base, tc.args...), env(nil), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestConfigCurveFromEnv: the broker's key and allow-lists come from the
// environment (as in the compose stack); GATE_CURVE_SECRET_KEY_FILE is the
// broker's own key, not a client setting that needs a server key too.
func TestConfigCurveFromEnv(t *testing.T) {
	c := gatetest.NewCurve(t) // skips without CURVE
	secret, clients, workers := curveFiles(t, c)
	cfg, err := parseConfig(nil, env(map[string]string{
		"GATE_CURVE_SECRET_KEY_FILE": secret, "GATE_CURVE_CLIENTS_FILE": clients, "GATE_CURVE_WORKERS_FILE": workers,
	}), io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig with the broker's CURVE variables: %v", err)
	}
	if cfg.Curve.SecretKeyFile != secret || cfg.Curve.ClientsFile != clients || cfg.Curve.WorkersFile != workers {
		t.Fatalf("curve config = %+v", cfg.Curve)
	}
}
