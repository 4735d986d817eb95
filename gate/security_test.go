package gate_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// startCurveWorker starts a worker for svc with CURVE keys own and waits
// until Serve runs; it is shut down at cleanup.
func startCurveWorker(t *testing.T, h *gatetest.Harness, svc *gate.Service, server string, own gate.KeyPair) {
	t.Helper()
	w, err := gate.NewWorker(h.Backend, svc, gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(time.Second),
		gate.WithCurve(server, own), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)
}

// curveClient returns a gate client of h's broker with CURVE keys own,
// closed at cleanup.
func curveClient(t *testing.T, h *gatetest.Harness, server string, own gate.KeyPair) *gate.Client {
	t.Helper()
	cl, err := gate.NewClient(h.Frontend, gate.WithZMQContext(h.Ctx), gate.WithCurve(server, own),
		gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestCurveCallEndToEnd: a gate client and a gate worker with CURVE keys
// call through a CURVE broker on tcp://127.0.0.1.
func TestCurveCallEndToEnd(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := gatetest.StartBrokerOn(t, gatetest.TCP, broker.WithHeartbeat(time.Second),
		broker.WithCurve(c.Server.Secret), broker.WithClientKeys(c.Client.Public),
		broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public, Services: []string{"E2E"}}))
	startCurveWorker(t, h, workerE2EService(t, nil), c.Server.Public, c.Worker)
	cl := curveClient(t, h, c.Server.Public, c.Client)
	ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
	defer cancel()
	if err := cl.WaitService(ctx, "E2E"); err != nil {
		t.Fatalf("E2E never registered over CURVE: %v", err)
	}
	if got, err := cl.Call(ctx, "E2E.add", 40, 2); err != nil || got != int64(42) {
		t.Fatalf("add(40, 2) = %v, %v; want 42", got, err)
	}
	if st := h.Broker.Stats(); len(st.AuthFailures) != 0 {
		t.Fatalf("AuthFailures = %v, want none", st.AuthFailures)
	}
}

// TestCurveUnlistedGateWorker: a gate worker whose key is not listed
// never registers; a caller gets ServiceUnAvailableError.
func TestCurveUnlistedGateWorker(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := gatetest.StartBrokerOn(t, gatetest.TCP, broker.WithHeartbeat(time.Second),
		broker.WithCurve(c.Server.Secret), broker.WithClientKeys(c.Client.Public),
		broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public}))
	startCurveWorker(t, h, workerE2EService(t, nil), c.Server.Public, gatetest.NewKey(t))
	gatetest.WaitFor(t, gatetest.RecvTimeout, "denied worker counted", func() bool {
		return h.Broker.Stats().AuthFailures["backend/unknown_key"] > 0
	})
	cl := curveClient(t, h, c.Server.Public, c.Client)
	ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
	defer cancel()
	_, err := cl.Call(ctx, "E2E.add", 1, 1)
	var ge *gate.Error
	if !errors.As(err, &ge) || ge.Class != "ServiceUnAvailableError" {
		t.Fatalf("Call = %v, want ServiceUnAvailableError", err)
	}
	if n := h.Broker.Stats().Workers; n != 0 {
		t.Fatalf("Workers = %d, want 0", n)
	}
}

func TestKeyPairFiles(t *testing.T) {
	gatetest.NewCurve(t) // skips without CURVE
	kp, err := gate.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sec, pub := filepath.Join(dir, "w.key"), filepath.Join(dir, "w.pub")
	if err := gate.WriteKeyPair(sec, pub, kp); err != nil {
		t.Fatalf("WriteKeyPair: %v", err)
	}
	if fi, err := os.Stat(sec); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	gotSec, err := gate.ReadKeyFile(sec)
	if err != nil || gotSec != kp.Secret {
		t.Fatalf("ReadKeyFile(secret) = %v, want the secret key", err)
	}
	gotPub, err := gate.ReadKeyFile(pub)
	if err != nil || gotPub != kp.Public {
		t.Fatalf("ReadKeyFile(public) = %q, %v; want %q", gotPub, err, kp.Public)
	}
	derived, err := gate.KeyPairFromSecret(gotSec)
	if err != nil || derived != kp {
		t.Fatalf("KeyPairFromSecret = %v, %v; want %v", derived, err, kp)
	}
	if err := gate.WriteKeyPair(sec, pub, kp); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteKeyPair = %v, want fs.ErrExist", err)
	}
	if s := kp.String() + (gate.Curve{ServerKey: kp.Public, SecretKey: kp.Secret}).String(); strings.Contains(s, kp.Secret) {
		t.Fatalf("String() shows the secret key: %s", s)
	}
}

func TestReadKeyFileErrors(t *testing.T) {
	key := strings.Repeat("0", 40)
	dir := t.TempDir()
	readKey := func(text string) (string, error) {
		path := filepath.Join(dir, "k.key")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return gate.ReadKeyFile(path)
	}
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "no key"},
		{"comments only", "# nothing\n\n", "no key"},
		{"two keys", key + "\n" + key + "\n", "2 non-comment lines"},
		{"short", "abc", "3 characters, want 40"},
		{"hex", strings.Repeat("ab", 32), "hex?"},
		{"bad char", strings.Repeat("0", 39) + "~", "outside the Z85 alphabet at offset 39"},
		{"overflow", strings.Repeat("#", 40), "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readKey(tt.text)
			if !errors.Is(err, gate.ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadKeyFile(%q) = %v, want ErrInvalidOption mentioning %q", tt.text, err, tt.want)
			}
		})
	}
	if k, err := readKey("# comment\n  " + key + "  \n"); err != nil || k != key {
		t.Fatalf("ReadKeyFile(commented key) = %q, %v", k, err)
	}
	if _, err := gate.ReadKeyFile(filepath.Join(t.TempDir(), "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadKeyFile(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestCurveFromEnv(t *testing.T) {
	c := gatetest.NewCurve(t)
	dir := t.TempDir()
	secFile := filepath.Join(dir, "c.key")
	if err := gate.WriteKeyPair(secFile, filepath.Join(dir, "c.pub"), c.Client); err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	got, err := gate.CurveFromEnv(env("GATE_CURVE_SERVER_KEY", c.Server.Public, "GATE_CURVE_SECRET_KEY_FILE", secFile))
	if err != nil || got.ServerKey != c.Server.Public || got.SecretKey != c.Client.Secret || got.PublicKey != c.Client.Public {
		t.Fatalf("CurveFromEnv = %v, %v", got, err)
	}
	if got, err := gate.CurveFromEnv(env()); err != nil || got.Enabled() {
		t.Fatalf("CurveFromEnv(empty) = %v, %v; want plain", got, err)
	}
	bad := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"server only", env("GATE_CURVE_SERVER_KEY", c.Server.Public), "GATE_CURVE_SECRET_KEY"},
		{"bad server key", env("GATE_CURVE_SERVER_KEY", "nope", "GATE_CURVE_SECRET_KEY", c.Client.Secret), "GATE_CURVE_SERVER_KEY"},
		{"missing file", env("GATE_CURVE_SERVER_KEY", c.Server.Public, "GATE_CURVE_SECRET_KEY_FILE", filepath.Join(dir, "none")), "GATE_CURVE_SECRET_KEY_FILE"},
		{"wrong public", env("GATE_CURVE_SERVER_KEY", c.Server.Public, "GATE_CURVE_SECRET_KEY", c.Client.Secret, "GATE_CURVE_PUBLIC_KEY", c.Worker.Public), "does not belong"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if _, err := gate.CurveFromEnv(b.env); err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("CurveFromEnv = %v, want an error mentioning %q", err, b.want)
			}
		})
	}
	if _, err := gate.NewClient("tcp://127.0.0.1:1", gate.WithCurve(c.Server.Public, gate.KeyPair{Secret: "x"})); !errors.Is(err, gate.ErrInvalidOption) {
		t.Fatalf("NewClient with a bad secret key = %v, want ErrInvalidOption", err)
	}
}

// BenchmarkCurveCall compares serial calls (gate client → broker → gate
// worker over tcp://127.0.0.1) in plain mode and with CURVE on both hops.
func BenchmarkCurveCall(b *testing.B) {
	for _, curve := range []bool{false, true} {
		name := "plain"
		if curve {
			name = "curve"
		}
		b.Run(name, func(b *testing.B) {
			var bopts []broker.Option
			var c gatetest.Curve
			var wopts, copts []gate.CommonOption
			if curve {
				c = gatetest.NewCurve(b)
				bopts = []broker.Option{broker.WithCurve(c.Server.Secret), broker.WithClientKeys(c.Client.Public),
					broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public})}
				wopts = []gate.CommonOption{gate.WithCurve(c.Server.Public, c.Worker)}
				copts = []gate.CommonOption{gate.WithCurve(c.Server.Public, c.Client)}
			}
			h := gatetest.StartBrokerOn(b, gatetest.TCP, append(bopts, broker.WithHeartbeat(time.Second))...)
			svc, err := gate.NewService("E2E", "bench")
			if err != nil {
				b.Fatal(err)
			}
			if err := gate.Func2(svc, "add", func(_ context.Context, a, b int) (int, error) { return a + b, nil }); err != nil {
				b.Fatal(err)
			}
			all := []gate.WorkerOption{gate.WithZMQContext(h.Ctx), gate.WithLogger(gatetest.TestLogger(b))}
			for _, o := range wopts {
				all = append(all, o)
			}
			w, err := gate.NewWorker(h.Backend, svc, all...)
			if err != nil {
				b.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- w.Serve(context.Background()) }()
			defer func() { w.Close(); <-errc }()
			call := []gate.ClientOption{gate.WithZMQContext(h.Ctx), gate.WithLogger(gatetest.TestLogger(b))}
			for _, o := range copts {
				call = append(call, o)
			}
			cl, err := gate.NewClient(h.Frontend, call...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
			defer cancel()
			if err := cl.WaitService(ctx, "E2E"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cl.Call(ctx, "E2E.add", 1, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
