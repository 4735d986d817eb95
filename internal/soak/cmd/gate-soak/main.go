// Command gate-soak runs gate's long checks with real processes on
// 127.0.0.1 (package internal/soak):
//
//	gate-soak soak  [-calls 1000000 -streams 10000 ...]   calls and streams; RSS and goroutines sampled
//	gate-soak scale [-workers 1000 -clients 10000 ...]    idle peers on one broker; broker idle CPU and RSS
//	gate-soak churn [-clients 5000 -cycles 5 ...]         clients connect and leave; broker RSS per cycle
//	gate-soak peers -frontend F -backend B ...            idle raw peers (started by scale)
//
// soak, scale and churn build gate-broker, gate-demo-worker and gate-soak
// into a temporary directory first (-bin DIR uses binaries already
// built there). Each prints a summary table and exits 1 on a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gaterpc/gate/internal/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gate-soak:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = "usage: gate-soak soak|scale|churn|peers [flags] (-h for the flags of each)"

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("gate-soak "+args[0], flag.ContinueOnError)
	bin := fs.String("bin", "", "directory with gate-broker, gate-demo-worker and gate-soak already built (default: build them)")
	switch args[0] {
	case "soak":
		var cfg soak.Config
		fs.IntVar(&cfg.Calls, "calls", 1_000_000, "demo.echo calls")
		fs.IntVar(&cfg.Streams, "streams", 10_000, "demo.count streams")
		fs.IntVar(&cfg.StreamLen, "stream-len", 10, "items per stream")
		fs.IntVar(&cfg.Workers, "workers", 2, "gate-demo-worker processes")
		fs.IntVar(&cfg.Clients, "clients", 4, "gate.Clients")
		fs.IntVar(&cfg.Concurrency, "concurrency", 16, "calls in flight per client")
		fs.DurationVar(&cfg.Sample, "sample", 2*time.Second, "sampling period of RSS and goroutines")
		fs.DurationVar(&cfg.Timeout, "timeout", 15*time.Minute, "bound of the whole run")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Log = os.Stderr
		b, cleanup, err := binaries(ctx, *bin)
		if err != nil {
			return err
		}
		defer cleanup()
		rep, err := soak.Run(ctx, b, cfg)
		if err != nil {
			return err
		}
		rep.Print(os.Stdout)
		return rep.Err()
	case "scale":
		var cfg soak.ScaleConfig
		fs.IntVar(&cfg.Workers, "workers", 1000, "idle workers")
		fs.IntVar(&cfg.Clients, "clients", 10000, "idle clients")
		fs.IntVar(&cfg.Procs, "procs", 4, "peer processes")
		fs.DurationVar(&cfg.Heartbeat, "heartbeat", 5*time.Second, "heartbeat of the broker and the peers")
		fs.DurationVar(&cfg.Measure, "measure", 10*time.Second, "idle CPU window")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Log = os.Stderr
		b, cleanup, err := binaries(ctx, *bin)
		if err != nil {
			return err
		}
		defer cleanup()
		rep, err := soak.Scale(ctx, b, cfg)
		if rep != nil {
			rep.Print(os.Stdout)
		}
		return err
	case "churn":
		var cfg soak.ChurnConfig
		fs.IntVar(&cfg.Clients, "clients", 5000, "clients per cycle")
		fs.IntVar(&cfg.Cycles, "cycles", 5, "cycles")
		fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "pause after each cycle before sampling")
		maxGrowth := fs.Int64("max-growth-mb", 64, "fail when the broker's RSS grows more than this from the first cycle to the last")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Broker = fs.Args()
		cfg.Log = os.Stderr
		b, cleanup, err := binaries(ctx, *bin)
		if err != nil {
			return err
		}
		defer cleanup()
		rep, err := soak.Churn(ctx, b, cfg)
		if rep != nil {
			rep.Print(os.Stdout)
		}
		if err != nil {
			return err
		}
		if g := rep.Growth(); g > *maxGrowth<<20 {
			return fmt.Errorf("broker RSS grew %.1f MB from the first cycle to the last (max %d MB)", float64(g)/(1<<20), *maxGrowth)
		}
		return nil
	case "peers":
		var cfg soak.PeersConfig
		fs.StringVar(&cfg.Frontend, "frontend", "tcp://127.0.0.1:5555", "broker frontend")
		fs.StringVar(&cfg.Backend, "backend", "tcp://127.0.0.1:5556", "broker backend")
		fs.IntVar(&cfg.Workers, "workers", 0, "idle workers")
		fs.IntVar(&cfg.Clients, "clients", 0, "idle clients")
		fs.StringVar(&cfg.Service, "service", "idle", "the workers' service")
		fs.DurationVar(&cfg.Heartbeat, "heartbeat", 5*time.Second, "heartbeat and keepalive interval")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return soak.RunPeers(ctx, cfg, func() {
			fmt.Printf("peers ready: %d workers, %d clients\n", cfg.Workers, cfg.Clients)
		})
	}
	return errors.New(usage)
}

// binaries builds the three programs into a temporary directory unless
// dir is given.
func binaries(ctx context.Context, dir string) (soak.Binaries, func(), error) {
	if dir != "" {
		return soak.Binaries{Broker: dir + "/gate-broker", Worker: dir + "/gate-demo-worker", Soak: dir + "/gate-soak"}, func() {}, nil
	}
	root, err := soak.ModuleRoot()
	if err != nil {
		return soak.Binaries{}, nil, err
	}
	tmp, err := os.MkdirTemp("", "gate-soak-")
	if err != nil {
		return soak.Binaries{}, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	fmt.Fprintln(os.Stderr, "gate-soak: building the binaries")
	b, err := soak.Build(ctx, root, tmp)
	if err != nil {
		cleanup()
		return soak.Binaries{}, nil, err
	}
	return b, cleanup, nil
}
