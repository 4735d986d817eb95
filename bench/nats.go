package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const natsSubject = "bench.echo"

// runNATSServer embeds nats-server on 127.0.0.1 with a random port and
// prints its URL. The payload limit is raised to 8 MiB so that the 1 MiB
// rows fit (the default is 1 MiB, headers not counted).
func runNATSServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		MaxPayload: 8 << 20, MaxPending: 256 << 20,
	})
	if err != nil {
		return err
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats-server: not ready in 10s")
	}
	ready("url=" + ns.ClientURL())
	return waitDone(ctx)
}

// runNATSEcho answers every request on natsSubject with its payload, in a
// queue group, as a NATS service replica would.
func runNATSEcho(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nats-echo", flag.ContinueOnError)
	url := fs.String("connect", "", "server URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, err := nats.Connect(*url, nats.Name("bench-echo"))
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := nc.QueueSubscribe(natsSubject, "echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return err
	}
	// The 1 MiB rows keep up to 64 MiB in flight: no slow-consumer drops.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	ready("subject=" + natsSubject)
	return waitDone(ctx)
}

// runNATSClient is the closed-loop requester: -inflight goroutines over
// one connection, each calling nc.RequestWithContext.
func runNATSClient(ctx context.Context, args []string) error {
	cf, err := newClientFlags("nats-client", args, nil)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cf.connect, nats.Name("bench-client"))
	if err != nil {
		return err
	}
	defer nc.Close()
	p := payload(cf.size)
	call := func(ctx context.Context) error {
		m, err := nc.RequestWithContext(ctx, natsSubject, p)
		if err != nil {
			return err
		}
		if len(m.Data) != len(p) {
			return fmt.Errorf("%w: %d bytes back for %d", errShort, len(m.Data), len(p))
		}
		return nil
	}
	if err := retry(ctx, 20*time.Second, call); err != nil {
		return err
	}
	w := newWindow(cf.warmup, cf.duration, cf.inflight)
	res := closedLoop(ctx, cf.inflight, w, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return call(cctx)
	})
	return printResult(res)
}
