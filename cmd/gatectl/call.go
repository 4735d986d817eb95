package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
)

// kwFlag collects repeated -kw key=value flags.
type kwFlag []string

func (k *kwFlag) String() string     { return strings.Join(*k, " ") }
func (k *kwFlag) Set(s string) error { *k = append(*k, s); return nil }

// call implements `call` and, with stream, `stream`.
func (a *app) call(args []string, stream bool) error {
	name := "call"
	if stream {
		name = "stream"
	}
	fs := a.flagSet(name)
	var kws kwFlag
	fs.Var(&kws, "kw", "keyword argument key=value (value as JSON, or a plain word); repeatable")
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: gatectl %s SERVICE.METHOD [ARG...] [-kw key=value...]\n\n", name)
		fs.PrintDefaults()
	}
	f := cli.NewFlags(fs, a.getenv)
	pos, err := f.ParseInterspersed(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || !strings.Contains(pos[0], ".") {
		fs.Usage()
		return cli.Usagef("%s: want SERVICE.METHOD as the first argument", name)
	}
	method := pos[0]
	params, kw, err := parseArgs(pos[1:], kws)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()

	if !stream {
		ctx, cancel := a.callCtx()
		defer cancel()
		v, err := c.CallKW(ctx, method, params, kw)
		if err != nil {
			return a.remote(err)
		}
		return a.printJSON(v, a.g.json)
	}
	// A stream lives until it ends; each item must come within -timeout of
	// the previous one (the client's reply timeout).
	s, err := c.StreamKW(a.ctx, method, params, kw)
	if err != nil {
		return a.remote(err)
	}
	defer s.Close()
	for v, err := range s.All() {
		if err != nil {
			return a.remote(err)
		}
		if err := a.printJSON(v, true); err != nil {
			return err
		}
	}
	return nil
}

// noArgs parses a subcommand that takes only the global flags and want
// positional arguments.
func (a *app) parseSimple(name, usage string, want int, args []string) ([]string, error) {
	fs := a.flagSet(name)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: gatectl %s\n\n", usage)
		fs.PrintDefaults()
	}
	pos, err := cli.NewFlags(fs, a.getenv).ParseInterspersed(args)
	if err != nil {
		return nil, err
	}
	if len(pos) != want {
		fs.Usage()
		return nil, cli.Usagef("%s: want %d argument(s), got %q", name, want, pos)
	}
	return pos, nil
}

type serviceRow struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Internal    bool   `json:"internal,omitempty"`
}

func (a *app) services(args []string) error {
	if _, err := a.parseSimple("services", "services", 0, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := a.callCtx()
	defer cancel()
	names, err := c.Services(ctx)
	if err != nil {
		return a.remote(err)
	}
	internal := gate.DefaultSettings().InternalService
	rows := make([]serviceRow, 0, len(names))
	for _, n := range names {
		r := serviceRow{Name: n, Internal: n == internal}
		if r.Internal {
			r.Description = "the broker's internal service"
		} else if d, err := c.QueryService(ctx, n); err == nil {
			r.Description = d
		} else if errors.Is(err, gate.ErrNoService) {
			r.Description = "(no worker)"
		} else {
			return a.remote(err)
		}
		rows = append(rows, r)
	}
	if a.g.json {
		return a.printJSON(rows, true)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.Name, r.Description)
	}
	return tw.Flush()
}

func (a *app) info(args []string) error {
	if _, err := a.parseSimple("info", "info", 0, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := a.callCtx()
	defer cancel()
	bi, err := c.Info(ctx)
	if err != nil {
		return a.remote(err)
	}
	services := bi.Services
	if services == nil {
		services = []string{}
	}
	if a.g.json {
		return a.printJSON(map[string]any{"broker": a.g.broker, "id": hex.EncodeToString(bi.ID), "services": services}, true)
	}
	fmt.Fprintf(a.stdout, "broker    %s\nid        %s\nservices  %s\n", a.g.broker, hex.EncodeToString(bi.ID), strings.Join(services, ", "))
	return nil
}

func (a *app) interfaces(args []string) error {
	pos, err := a.parseSimple("interfaces", "interfaces SERVICE", 1, args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := a.callCtx()
	defer cancel()
	ifs, err := c.Interfaces(ctx, pos[0])
	if err != nil {
		return a.remote(err)
	}
	if a.g.json {
		out := make(map[string]any, len(ifs))
		for k, v := range ifs {
			out[k] = map[string]any{"doc": v.Doc, "signature": v.Signature}
		}
		return a.printJSON(out, true)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tSIGNATURE\tDOC")
	for _, k := range sortedKeys(ifs) {
		doc, _, _ := strings.Cut(strings.TrimSpace(ifs[k].Doc), "\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k, ifs[k].Signature, doc)
	}
	return tw.Flush()
}

var _ flag.Value = (*kwFlag)(nil)
