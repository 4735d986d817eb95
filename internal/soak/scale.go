package soak

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// ScaleConfig sizes a scale check.
type ScaleConfig struct {
	Workers   int           // idle raw workers [1,000]
	Clients   int           // idle raw clients [10,000]
	Procs     int           // peer processes to spread them over [4]
	Heartbeat time.Duration // broker and peer heartbeat [5s]
	Measure   time.Duration // idle CPU window [10s]
	Log       io.Writer
}

// ScaleReport is the outcome of a scale check.
type ScaleReport struct {
	Workers, Clients int
	Procs            int
	Connect          time.Duration // until every peer was answered
	BrokerCPU        float64       // CPU seconds per second while idle
	BrokerRSS        int64
	BrokerFDs        int
	BrokerThreads    int
	BrokerNoFile     string // the broker's "Max open files" limits
	PeerRSS          []int64
	Goroutines       int
}

// Print writes the report.
func (r *ScaleReport) Print(w io.Writer) {
	fmt.Fprintf(w, "scale: %d idle workers + %d idle clients over %d processes, all answered in %v\n",
		r.Workers, r.Clients, r.Procs, r.Connect.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "broker idle CPU\tRSS MB\tfds\tthreads\tgoroutines\tmax open files (soft hard)\t")
	fmt.Fprintf(tw, "%.1f%%\t%.1f\t%d\t%d\t%d\t%s\t\n", 100*r.BrokerCPU, mb(r.BrokerRSS), r.BrokerFDs, r.BrokerThreads,
		r.Goroutines, r.BrokerNoFile)
	tw.Flush()
	for i, rss := range r.PeerRSS {
		fmt.Fprintf(w, "peers %d: RSS %.1f MB\n", i+1, mb(rss))
	}
}

// Scale starts a broker and cfg.Procs gate-soak peers processes holding
// cfg.Workers idle workers and cfg.Clients idle clients, waits until all
// are answered, and measures the broker's CPU over cfg.Measure.
func Scale(ctx context.Context, bin Binaries, cfg ScaleConfig) (*ScaleReport, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1000
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 10000
	}
	if cfg.Procs <= 0 {
		cfg.Procs = 4
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.Measure <= 0 {
		cfg.Measure = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	front, back, bm, err := brokerAddrs()
	if err != nil {
		return nil, err
	}
	var procs []*Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Stop(5 * time.Second)
		}
	}()
	br, err := Start("gate-broker", bm, bin.Broker, "-frontend", front, "-backend", back, "-metrics-addr", bm,
		"-heartbeat", cfg.Heartbeat.String(), "-log-level", "warn", "-log-format", "text")
	if err != nil {
		return nil, err
	}
	procs = append(procs, br)
	if err := WaitHTTP(ctx, bm, "/healthz", 20*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, br.Output())
	}
	start := time.Now()
	peers := make([]*Proc, cfg.Procs)
	for i := range cfg.Procs {
		w := cfg.Workers / cfg.Procs
		c := cfg.Clients / cfg.Procs
		if i == cfg.Procs-1 {
			w = cfg.Workers - w*(cfg.Procs-1)
			c = cfg.Clients - c*(cfg.Procs-1)
		}
		p, err := Start(fmt.Sprintf("peers-%d", i+1), "", bin.Soak, "peers", "-frontend", front, "-backend", back,
			"-workers", fmt.Sprint(w), "-clients", fmt.Sprint(c), "-heartbeat", cfg.Heartbeat.String())
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		peers[i] = p
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, p := range peers {
		for !strings.Contains(p.Output(), "peers ready") {
			if p.Exited() {
				return nil, fmt.Errorf("%s exited: %v\n%s", p.Name, p.Wait(0), p.Output())
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("%s not ready after 3m: %s", p.Name, p.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := waitWorkers(ctx, bm, cfg.Workers); err != nil {
		return nil, err
	}
	rep := &ScaleReport{Workers: cfg.Workers, Clients: cfg.Clients, Procs: cfg.Procs, Connect: time.Since(start)}
	fmt.Fprintf(cfg.Log, "scale: all peers answered in %v; measuring idle CPU for %v\n", rep.Connect.Round(time.Millisecond), cfg.Measure)
	// Let the connection burst pass before the idle window.
	time.Sleep(2 * time.Second)
	t0, err := CPUTicks(br.Pid())
	if err != nil {
		return nil, err
	}
	w0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Measure):
	}
	t1, err := CPUTicks(br.Pid())
	if err != nil {
		return nil, err
	}
	rep.BrokerCPU = float64(t1-t0) / ClockTicks / time.Since(w0).Seconds()
	rep.BrokerRSS, _ = RSS(br.Pid())
	rep.BrokerThreads = Threads(br.Pid())
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", br.Pid())); err == nil {
		rep.BrokerFDs = len(fds)
	}
	rep.BrokerNoFile = noFile(br.Pid())
	if m, err := Gauges(ctx, bm, "go_goroutines"); err == nil {
		rep.Goroutines = int(m["go_goroutines"])
	}
	for _, p := range peers {
		rss, _ := RSS(p.Pid())
		rep.PeerRSS = append(rep.PeerRSS, rss)
	}
	if m, err := Gauges(ctx, bm, "gaterpc_broker_live_workers"); err != nil || int(m["gaterpc_broker_live_workers"]) != cfg.Workers {
		return rep, fmt.Errorf("after the idle window the broker has %v live workers (%v), want %d",
			m["gaterpc_broker_live_workers"], err, cfg.Workers)
	}
	for _, p := range peers {
		if p.Exited() {
			return rep, fmt.Errorf("%s exited during the idle window: %s", p.Name, p.Output())
		}
	}
	return rep, nil
}

// noFile is the "Max open files" soft and hard limits of pid.
func noFile(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				return f[0] + " " + f[1]
			}
		}
	}
	return "?"
}
