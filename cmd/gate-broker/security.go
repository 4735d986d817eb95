package main

import (
	"fmt"
	"log/slog"
	"strings"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/keys"
)

// curveConfig is the broker's CURVE configuration (docs/security.md).
type curveConfig struct {
	SecretKeyFile string // the server's secret key; "" = plain
	ClientsFile   string // allow-list of client keys
	WorkersFile   string // allow-list of worker keys, with their services
	PlainFrontend bool   // CURVE on the backend only
	secretKey     string // GATE_CURVE_SECRET_KEY, the key itself
}

// register defines the CURVE flags.
// register defines the CURVE flags on f; apply copies the parsed values
// into c.
func (c *curveConfig) register(f *cli.Flags, getenv func(string) string) (apply func()) {
	secret := f.String("curve-secret-key", keys.EnvSecretKey+"_FILE", "",
		"file with the broker's CURVE secret key (gatectl keygen); turns CURVE on. GATE_CURVE_SECRET_KEY may hold the key itself")
	clients := f.String("curve-clients", "GATE_CURVE_CLIENTS_FILE", "",
		"allow-list of client public keys, one per line (\"*\": any key); required with CURVE on the frontend")
	workers := f.String("curve-workers", "GATE_CURVE_WORKERS_FILE", "",
		"allow-list of worker public keys: lines \"KEY [service1,service2]\" (no services: any); required with CURVE")
	plain := f.Bool("curve-plain-frontend", "GATE_CURVE_PLAIN_FRONTEND", false,
		"CURVE on the backend only: plain clients (e.g. Python 0.2.12) may connect")
	c.secretKey = strings.TrimSpace(getenv(keys.EnvSecretKey))
	return func() {
		c.SecretKeyFile, c.ClientsFile, c.WorkersFile, c.PlainFrontend = *secret, *clients, *workers, *plain
	}
}

// options returns the broker options of c, reading the key files; none in
// plain mode.
func (c *curveConfig) options(log *slog.Logger) ([]broker.Option, error) {
	secret := c.secretKey
	if c.SecretKeyFile != "" {
		k, err := gate.ReadKeyFile(c.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("-curve-secret-key: %w", err)
		}
		secret = k
	}
	if secret == "" {
		if c.ClientsFile != "" || c.WorkersFile != "" || c.PlainFrontend {
			return nil, fmt.Errorf("-curve-clients, -curve-workers and -curve-plain-frontend need -curve-secret-key (%s_FILE)", keys.EnvSecretKey)
		}
		return nil, nil
	}
	if c.WorkersFile == "" {
		return nil, fmt.Errorf("CURVE needs -curve-workers (%s): the worker keys allowed to register (a line \"*\" admits any key)", "GATE_CURVE_WORKERS_FILE")
	}
	if c.ClientsFile == "" && !c.PlainFrontend {
		return nil, fmt.Errorf("CURVE needs -curve-clients (%s): the client keys allowed to call (a line \"*\" admits any key), or -curve-plain-frontend", "GATE_CURVE_CLIENTS_FILE")
	}
	opts := []broker.Option{broker.WithCurve(secret), broker.WithCurveSockets(!c.PlainFrontend, true)}
	var nClients, nWorkers int
	if c.ClientsFile != "" {
		keys, err := broker.ReadKeyListFile(c.ClientsFile)
		if err != nil {
			return nil, fmt.Errorf("-curve-clients: %w", err)
		}
		for _, k := range keys {
			if len(k.Services) > 0 {
				return nil, fmt.Errorf("-curve-clients: %s: services apply to worker keys only", c.ClientsFile)
			}
			opts = append(opts, broker.WithClientKeys(k.Key))
		}
		nClients = len(keys)
	}
	if c.WorkersFile != "" {
		keys, err := broker.ReadKeyListFile(c.WorkersFile)
		if err != nil {
			return nil, fmt.Errorf("-curve-workers: %w", err)
		}
		opts = append(opts, broker.WithWorkerKeys(keys...))
		nWorkers = len(keys)
	}
	kp, err := gate.KeyPairFromSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("-curve-secret-key: %w", err)
	}
	log.Info("gate-broker CURVE", "server_public_key", kp.Public, "plain_frontend", c.PlainFrontend,
		"client_keys", nClients, "worker_keys", nWorkers)
	return opts, nil
}

// curveProbe sets up the health probe's socket for a CURVE frontend: with
// the broker's secret key in the environment (GATE_CURVE_SECRET_KEY_FILE
// or GATE_CURVE_SECRET_KEY) it authenticates with the server's own key
// pair, which the broker always admits on its frontend. Without it the
// probe is plain.
func curveProbe(s *zmq.Socket, getenv func(string) string) error {
	secret := strings.TrimSpace(getenv(keys.EnvSecretKey))
	if f := getenv(keys.EnvSecretKey + "_FILE"); secret == "" && f != "" {
		k, err := gate.ReadKeyFile(f)
		if err != nil {
			return fmt.Errorf("health: %w", err)
		}
		secret = k
	}
	if secret == "" {
		return nil
	}
	kp, err := gate.KeyPairFromSecret(secret)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if err := s.SetCurveServerkey(kp.Public); err != nil {
		return err
	}
	if err := s.SetCurvePublickey(kp.Public); err != nil {
		return err
	}
	return s.SetCurveSecretkey(kp.Secret)
}
