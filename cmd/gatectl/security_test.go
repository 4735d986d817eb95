package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/demo"
	"github.com/gaterpc/gate/internal/gatetest"
)

func TestKeygen(t *testing.T) {
	gatetest.NewCurve(t) // skips without CURVE
	dir := t.TempDir()
	prefix := filepath.Join(dir, "worker")
	list := filepath.Join(dir, "workers.list")
	out, errs, err := gatectl(t, "", "keygen", "-allow", list, "-services", "demo,Log", prefix)
	if err != nil {
		t.Fatalf("keygen: %v (%s)", err, errs)
	}
	pub := strings.TrimSpace(out)
	if err := gate.CheckKey(pub); err != nil {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
	fi, err := os.Stat(prefix + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v, %v; want mode 0600", fi, err)
	}
	sec, err := gate.ReadKeyFile(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if kp, err := gate.KeyPairFromSecret(sec); err != nil || kp.Public != pub {
		t.Fatalf("public key of the secret file = %v, %v; printed %s", kp.Public, err, pub)
	}
	if got, err := gate.ReadKeyFile(prefix + ".pub"); err != nil || got != pub {
		t.Fatalf("public key file = %q, %v; want %s", got, err, pub)
	}
	if _, _, err := gatectl(t, "", "keygen", prefix); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("keygen over an existing key = %v, want an error", err)
	}
	out, _, err = gatectl(t, "", "keygen", "-if-missing", "-allow", list, "-services", "demo,Log", prefix)
	if err != nil || strings.TrimSpace(out) != pub {
		t.Fatalf("keygen -if-missing = %q, %v; want the same key %s", out, err, pub)
	}
	keys, err := broker.ReadKeyListFile(list)
	if err != nil || len(keys) != 1 || keys[0].Key != pub || strings.Join(keys[0].Services, ",") != "demo,Log" {
		t.Fatalf("allow-list = %+v, %v; want one entry for %s with demo,Log", keys, err, pub)
	}
	if _, _, err := gatectl(t, "", "keygen"); exitCode(err) != 2 {
		t.Fatalf("keygen without PREFIX: exit %d, want 2", exitCode(err))
	}
}

// TestKeygenBeforeKeysExist: keygen runs while GATE_CURVE_*_FILE name the
// files it is about to write (the compose broker's entrypoint does this).
func TestKeygenBeforeKeysExist(t *testing.T) {
	gatetest.NewCurve(t) // skips without CURVE
	prefix := filepath.Join(t.TempDir(), "broker")
	env := map[string]string{"GATE_CURVE_SECRET_KEY_FILE": prefix + ".key", "GATE_CURVE_SERVER_KEY_FILE": prefix + ".pub"}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := run(ctx, []string{"keygen", "-if-missing", prefix}, func(k string) string { return env[k] }, &out, &errb); err != nil {
		t.Fatalf("keygen with the key files still missing: %v (%s)", err, errb.String())
	}
	if err := gate.CheckKey(strings.TrimSpace(out.String())); err != nil {
		t.Fatalf("keygen printed %q: %v", out.String(), err)
	}
}

// TestCallCurve: gatectl reaches a CURVE broker with key files given by
// flag or environment, and not without them.
func TestCallCurve(t *testing.T) {
	c := gatetest.NewCurve(t)
	dir := t.TempDir()
	server, client := filepath.Join(dir, "server.pub"), filepath.Join(dir, "client")
	if err := writePublic(server, c.Server.Public); err != nil {
		t.Fatal(err)
	}
	if err := gate.WriteKeyPair(client+".key", client+".pub", c.Client); err != nil {
		t.Fatal(err)
	}
	h := gatetest.StartBrokerOn(t, gatetest.TCP, broker.WithHeartbeat(testHB), broker.WithCurve(c.Server.Secret),
		broker.WithClientKeys(c.Client.Public), broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public, Services: []string{"demo"}}))
	svc, err := demo.NewService("demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWorker(h.Backend, gate.WithHeartbeat(testHB), gate.WithCurve(c.Server.Public, c.Worker), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)
	flags := []string{"-curve-server-key", server, "-curve-secret-key", client + ".key"}
	deadline := time.Now().Add(testTimeout)
	for {
		out, _, err := gatectl(t, h.Frontend, append(flags, "-timeout", "1s", "call", "demo.echo", "hi")...)
		if err == nil && strings.Contains(out, `"hi"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call over CURVE succeeded: %v %q", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Flags after the command name work too.
	if out, _, err := gatectl(t, h.Frontend, append([]string{"call", "demo.echo", "hi"}, flags...)...); err != nil || !strings.Contains(out, `"hi"`) {
		t.Fatalf("call with CURVE flags after the command = %q, %v", out, err)
	}
	if _, _, err := gatectl(t, h.Frontend, "-timeout", "300ms", "call", "demo.echo", "hi"); err == nil {
		t.Fatalf("a plain gatectl got an answer from a CURVE broker")
	}
	if st := h.Broker.Stats(); st.AuthFailures["frontend/mechanism"]+st.AuthFailures["frontend/handshake"] == 0 {
		t.Fatalf("the plain gatectl was not counted: %v", h.Broker.Stats().AuthFailures)
	}
	if _, _, err := gatectl(t, h.Frontend, "-curve-server-key", server, "call", "demo.echo"); err == nil || !strings.Contains(err.Error(), "GATE_CURVE_SECRET_KEY") {
		t.Fatalf("server key without a secret key = %v, want an error naming GATE_CURVE_SECRET_KEY", err)
	}
}

// TestDemoCurveFrontend: `gatectl demo -curve-frontend` prints the key
// flags another gatectl needs; with them a call succeeds, without them it
// does not.
func TestDemoCurveFrontend(t *testing.T) {
	gatetest.NewCurve(t) // skips without CURVE
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr gatetest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-frontend", "tcp://127.0.0.1:0", "-backend", "tcp://127.0.0.1:0",
			"-metrics-addr", "", "-procs", "0", "-rate", "0", "-log-level", "warn", "-curve-frontend"},
			func(string) string { return "" }, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo = %v", err)
		}
	}()
	re := regexp.MustCompile(`frontend (tcp://\S+)[\s\S]*CURVE on frontend and backend[\s\S]*gatectl (-curve-server-key \S+ -curve-secret-key \S+)`)
	var m []string
	gatetest.WaitFor(t, testTimeout, "demo banner with CURVE flags", func() bool {
		m = re.FindStringSubmatch(stdout.String())
		return m != nil
	})
	front, flags := m[1], strings.Fields(m[2])
	deadline := time.Now().Add(testTimeout)
	for {
		out, _, err := gatectl(t, front, append(flags, "-timeout", "1s", "call", "demo.echo", "hi")...)
		if err == nil && strings.Contains(out, `"hi"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call with the printed flags succeeded: %v %q\n%s", err, out, stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, err := gatectl(t, front, "-timeout", "300ms", "call", "demo.echo", "hi"); err == nil {
		t.Fatal("a plain gatectl got an answer from the demo's CURVE frontend")
	}
}
