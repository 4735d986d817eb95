package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
)

// keygen writes a CURVE key pair: PREFIX.key (the secret key, mode 0600)
// and PREFIX.pub (the public key), and prints the public key on stdout.
//
//	gatectl keygen [-if-missing] [-allow FILE [-services S1,S2]] PREFIX
//
// With -if-missing an existing PREFIX.key is kept (its public key is
// printed, and PREFIX.pub rewritten if it is missing), so that a
// container entrypoint may run it at every start. -allow appends the
// public key to an allow-list file of gate-broker (-curve-clients,
// -curve-workers) unless it is already listed, with -services as the
// services a worker key may serve.
func (a *app) keygen(args []string) error {
	f := a.flags("keygen")
	ifMissing := f.Bool("if-missing", "", false, "keep an existing PREFIX.key")
	allow := f.String("allow", "", "", "allow-list file to add the public key to")
	services := f.String("services", "", "", "with -allow: comma-separated services the key may serve (workers); empty: any")
	pos, err := f.ParseInterspersed(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("keygen: want one PREFIX (writes PREFIX.key and PREFIX.pub), got %q", pos)
	}
	if *services != "" && *allow == "" {
		return cli.Usagef("keygen: -services needs -allow")
	}
	secPath, pubPath := pos[0]+".key", pos[0]+".pub"
	var kp gate.KeyPair
	secret, err := gate.ReadKeyFile(secPath)
	switch {
	case err == nil && *ifMissing:
		if kp, err = gate.KeyPairFromSecret(secret); err != nil {
			return fmt.Errorf("keygen: %s: %w", secPath, err)
		}
		if _, err := os.Stat(pubPath); errors.Is(err, fs.ErrNotExist) {
			if err := writePublic(pubPath, kp.Public); err != nil {
				return err
			}
		}
	case err == nil:
		return fmt.Errorf("keygen: %s exists; remove it or pass -if-missing to keep it", secPath)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("keygen: %w", err)
	default:
		if kp, err = gate.NewKeyPair(); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		if err := gate.WriteKeyPair(secPath, pubPath, kp); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	if *allow != "" {
		if err := addToAllowList(*allow, kp.Public, *services); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	_, err = fmt.Fprintln(a.stdout, kp.Public)
	return err
}

// writePublic writes a public key file.
func writePublic(path, public string) error {
	return os.WriteFile(path, []byte("# gate CURVE public key (Z85)\n"+public+"\n"), 0o644)
}

// addToAllowList appends "public [services]" to the allow-list file at
// path unless the key is already listed there.
func addToAllowList(path, public, services string) error {
	line := public
	if services != "" {
		line += " " + services
	}
	if b, err := os.ReadFile(path); err == nil {
		keys, err := broker.ParseKeyList(strings.NewReader(string(b)))
		if err != nil {
			return fmt.Errorf("allow-list %s: %w", path, err)
		}
		if slices.ContainsFunc(keys, func(k broker.AuthorizedKey) bool { return k.Key == public }) {
			return nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// demoCurve is the CURVE setup of `gatectl demo`: ephemeral keys for the
// broker, the workers (allowed to serve only the demo service) and the
// traffic client.
type demoCurve struct {
	server, worker, client gate.KeyPair
	dir                    string // with a CURVE frontend: where gatectl's keys are, for other terminals
}

// newDemoCurve generates the demo's keys. With frontend, the client key
// pair and the server's public key are also written to a fresh temporary
// directory, for gatectl in another terminal.
func newDemoCurve(frontend bool) (*demoCurve, error) {
	var d demoCurve
	for _, kp := range []*gate.KeyPair{&d.server, &d.worker, &d.client} {
		k, err := gate.NewKeyPair()
		if err != nil {
			return nil, fmt.Errorf("demo: CURVE keys: %w", err)
		}
		*kp = k
	}
	if frontend {
		dir, err := os.MkdirTemp("", "gate-demo-keys-")
		if err != nil {
			return nil, err
		}
		d.dir = dir
		if err := gate.WriteKeyPair(filepath.Join(dir, "client.key"), filepath.Join(dir, "client.pub"), d.client); err != nil {
			return nil, err
		}
		if err := writePublic(filepath.Join(dir, "server.pub"), d.server.Public); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

// brokerOptions returns the broker's CURVE options: the backend always
// (workers need the worker key and may serve only service), the frontend
// only with frontend.
func (d *demoCurve) brokerOptions(service string, frontend bool) []broker.Option {
	return []broker.Option{
		broker.WithCurve(d.server.Secret),
		broker.WithCurveSockets(frontend, true),
		broker.WithClientKeys(d.client.Public),
		broker.WithWorkerKeys(broker.AuthorizedKey{Key: d.worker.Public, Services: []string{service}}),
	}
}

// log reports the setup once.
func (d *demoCurve) log(log *slog.Logger, frontend bool) {
	if frontend {
		log.Info("demo: CURVE on (frontend and backend): ephemeral keys; gatectl in another terminal needs "+d.gatectlFlags(),
			"server_public_key", d.server.Public, "keys_dir", d.dir)
		return
	}
	log.Info("demo: CURVE on the backend: workers authenticate with an ephemeral key allowed only for the demo service; frontend plain on loopback (-curve-frontend secures it too)",
		"server_public_key", d.server.Public, "worker_public_key", d.worker.Public)
}

// banner prints the security part of the demo's banner.
func (d *demoCurve) banner(w io.Writer, frontend bool, service string) {
	if frontend {
		fmt.Fprintf(w, "  security  CURVE on frontend and backend (ephemeral keys). Other gatectl runs need:\n            gatectl %s ...\n\n", d.gatectlFlags())
		return
	}
	fmt.Fprintf(w, "  security  CURVE on the backend: only the demo workers' key may register, for %q only.\n            Frontend plain on loopback (-curve-frontend: CURVE there too). See docs/security.md.\n\n", service)
}

// gatectlFlags are the flags another gatectl needs with a CURVE frontend.
func (d *demoCurve) gatectlFlags() string {
	return "-curve-server-key " + filepath.Join(d.dir, "server.pub") + " -curve-secret-key " + filepath.Join(d.dir, "client.key")
}

// close removes the temporary key directory.
func (d *demoCurve) close() {
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}
