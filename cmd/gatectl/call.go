package main

import (
	"context"
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
	f := a.flags(name)
	fs := f.FS
	var kws kwFlag
	fs.Var(&kws, "kw", "keyword argument key=value (value as JSON, or a plain word); repeatable")
	data := fs.String("d", "", `arguments as one JSON document: [arg, ...] or {"args": [...], "kwargs": {...}}; @FILE reads FILE, - reads stdin`)
	outPath := fs.String("o", "", "write the result to FILE (- for stdout): bytes raw, anything else as JSON; stream items are appended in order")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatectl %s SERVICE.METHOD [ARG...] [-kw key=value...] [-d @FILE|-|JSON] [-o FILE]\n\n", name)
		fs.PrintDefaults()
	}
	pos, err := f.ParseInterspersed(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || !strings.Contains(pos[0], ".") {
		fs.SetOutput(a.stderr)
		fs.Usage()
		return cli.Usagef("%s: want SERVICE.METHOD as the first argument", name)
	}
	method := pos[0]
	params, kw, err := a.callArgs(*data, pos[1:], kws)
	if err != nil {
		return err
	}
	out, err := a.output(*outPath)
	if err != nil {
		return err
	}
	defer out.close()

	svc, fn, _ := strings.Cut(method, ".")
	c, closeClient, err := a.client(false, []string{svc + "/" + fn})
	if err != nil {
		return err
	}
	defer closeClient()

	// -timeout bounds the whole call, stream or not.
	ctx, cancel := a.callCtx()
	defer cancel()
	if !stream {
		v, err := c.CallKW(ctx, method, params, kw)
		if err != nil {
			return a.remote(a.deadline(ctx, method, err))
		}
		return errors.Join(out.write(v, a.g.json), out.close())
	}
	s, err := c.StreamKW(ctx, method, params, kw)
	if err != nil {
		return a.remote(a.deadline(ctx, method, err))
	}
	defer s.Close()
	for v, err := range s.All() {
		if err != nil {
			return a.remote(a.deadline(ctx, method, err))
		}
		if err := out.write(v, true); err != nil {
			return err
		}
	}
	return out.close()
}

// deadline rewrites the error of a call that ran out of -timeout into one
// that says so; other errors are returned unchanged.
func (a *app) deadline(ctx context.Context, method string, err error) error {
	if ctx.Err() == context.DeadlineExceeded && a.ctx.Err() == nil &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gate.ErrTimeout)) {
		return fmt.Errorf("%s: no reply within -timeout %v from the broker at %s", method, a.g.timeout, a.g.broker)
	}
	return err
}

// parseSimple parses a subcommand that takes only the global flags and
// want positional arguments.
func (a *app) parseSimple(name, usage string, want int, args []string) ([]string, error) {
	f := a.flags(name)
	fs := f.FS
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatectl %s\n\n", usage)
		fs.PrintDefaults()
	}
	pos, err := f.ParseInterspersed(args)
	if err != nil {
		return nil, err
	}
	if len(pos) != want {
		fs.SetOutput(a.stderr)
		fs.Usage()
		return nil, cli.Usagef("%s: want %d argument(s), got %q", name, want, pos)
	}
	return pos, nil
}

func (a *app) info(args []string) error {
	if _, err := a.parseSimple("info", "info", 0, args); err != nil {
		return err
	}
	c, closeClient, err := a.client(false, a.internalMethods())
	if err != nil {
		return err
	}
	defer closeClient()
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
	c, closeClient, err := a.client(false, a.internalMethods())
	if err != nil {
		return err
	}
	defer closeClient()
	ctx, cancel := a.callCtx()
	defer cancel()
	internal := pos[0] == a.settings.InternalService
	ictx, icancel := ctx, context.CancelFunc(func() {})
	if internal {
		// A 0.2.12 broker with SECURE=True never answers get_interfaces.
		ictx, icancel = context.WithTimeout(ctx, extWait)
	}
	ifs, err := c.Interfaces(ictx, pos[0])
	icancel()
	var ge *gate.Error
	unanswered := internal && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	if err != nil && internal && (unanswered || errors.As(err, &ge) && ge.Class == "AttributeError") {
		// A 0.2.12 broker does not answer get_interfaces: list the
		// functions it serves.
		ifs, err = brokerInterfaces, nil
	}
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

// brokerInterfaces are the functions of a 0.2.12 broker's internal
// service (and gate's cancel), for `interfaces Gate` when the broker does
// not answer Gate.get_interfaces (a gate broker does).
var brokerInterfaces = map[string]gate.Interface{
	"get_services":  {Signature: "() -> list[str]", Doc: "Names of the services with workers, and the internal service."},
	"query_service": {Signature: "(name: str) -> str | None", Doc: "The description a service's workers announced, or None."},
	"info":          {Signature: "() -> {my_id: bytes, services: list[str]}", Doc: "The broker's id and its worker services."},
	"keepalive":     {Signature: "(b'heartbeat') -> b'200'", Doc: "Liveness probe (gate-broker health)."},
	"cancel":        {Signature: "(request_id: bytes) -> bool", Doc: "gate extension: cancel one of the caller's own requests."},
}

// internalMethods are the broker's Gate.* functions the inspection
// commands call, as span names.
func (a *app) internalMethods() []string {
	var ms []string
	for _, fn := range []string{"get_services", "query_service", "info", "get_interfaces", "keepalive", "service_stats"} {
		ms = append(ms, a.settings.InternalService+"/"+fn)
	}
	return ms
}

var _ flag.Value = (*kwFlag)(nil)
