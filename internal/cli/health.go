package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Default metrics addresses Health probes when neither -addr nor
// GATE_METRICS_ADDR is set: the ports of the README and the compose
// stack (broker and `gatectl demo` 9100, demo workers 9101).
const (
	DefaultHealthAddr       = "127.0.0.1:9100"
	DefaultWorkerHealthAddr = "127.0.0.1:9101"
)

// Health implements the `health` subcommand shared by the binaries (the
// compose healthcheck): it GETs http://ADDR/healthz (or -path) and
// succeeds on 200, printing "ok URL" to stdout; otherwise it prints the
// reason to stderr and returns ExitError{1}.
//
// Flags: -addr (env GATE_METRICS_ADDR, default defaultAddr): the
// binary's -metrics-addr; a wildcard host (":9100", "0.0.0.0:9100",
// "[::]:9100") is probed on loopback. -path (default /healthz; /readyz
// asks for readiness). -timeout (default 3s). -h prints the usage on
// stdout and returns flag.ErrHelp.
func Health(ctx context.Context, name, defaultAddr string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := NewFlags(fs, getenv).Output(stdout, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [-addr HOST:PORT] [-path /healthz] [-timeout D]\n\n"+
			"GET http://ADDR/PATH of the binary's metrics server; exit 0 on 200, else 1.\n\n", name)
		fs.PrintDefaults()
	}
	addr := f.String("addr", "GATE_METRICS_ADDR", defaultAddr, "host:port of the binary's metrics server")
	path := fs.String("path", "/healthz", "path to probe (/healthz: alive, /readyz: ready)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := f.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("health: unexpected arguments %q", fs.Args())
	}
	u := HealthURL(*addr, *path)
	if err := probe(ctx, u, *timeout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitError{Code: 1}
	}
	fmt.Fprintf(stdout, "ok %s\n", u)
	return nil
}

// HealthURL returns the URL probing path on a server listening on addr,
// with wildcard hosts replaced by loopback.
func HealthURL(addr, path string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "tcp://")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "80"
	}
	switch host {
	case "", "0.0.0.0", "::", "*":
		host = "127.0.0.1"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

func probe(ctx context.Context, u string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	// No keep-alive: no transport goroutine outlives the probe.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
