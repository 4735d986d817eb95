package soak

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gaterpc/gate/gate"
)

// Config sizes a soak run. The zero value of a field takes the default
// in brackets.
type Config struct {
	Calls       int           // demo.echo calls [1,000,000]
	Streams     int           // demo.count streams [10,000]
	StreamLen   int           // items per stream [10]
	Workers     int           // gate-demo-worker processes [2]
	Clients     int           // gate.Clients in this process [4]
	Concurrency int           // calls in flight per client [16]
	Sample      time.Duration // sampling period of RSS and goroutines [2s]
	Timeout     time.Duration // bound of the whole run [15m]
	Log         io.Writer     // progress lines; nil: none
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Calls, 1_000_000)
	def(&c.Streams, 10_000)
	def(&c.StreamLen, 10)
	def(&c.Workers, 2)
	def(&c.Clients, 4)
	def(&c.Concurrency, 16)
	if c.Sample <= 0 {
		c.Sample = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Sample is one reading of a process.
type Sample struct {
	At         time.Duration // since the load started
	Progress   float64       // fraction of the operations done, 0..1
	RSS        int64         // bytes
	Goroutines int           // -1 if unknown
}

// Series is the samples of one process.
type Series struct {
	Name    string
	Pid     int
	Samples []Sample
}

// Report is the outcome of a soak run.
type Report struct {
	Calls, CallErrors     int64
	Streams, StreamErrors int64
	StreamItems           int64
	Elapsed               time.Duration
	FirstErrors           []string
	Series                []*Series
	Problems              []string // unbounded growth, unclean exits
}

// Err is nil when the run had no errors and no problems.
func (r *Report) Err() error {
	if r.CallErrors == 0 && r.StreamErrors == 0 && len(r.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("soak: %d call errors, %d stream errors, problems %v, first errors %v",
		r.CallErrors, r.StreamErrors, r.Problems, r.FirstErrors)
}

// Print writes the summary table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "soak: %d calls (%d errors), %d streams of %d items (%d errors) in %v: %.0f calls/s\n",
		r.Calls, r.CallErrors, r.Streams, r.StreamItems, r.StreamErrors, r.Elapsed.Round(time.Millisecond),
		float64(r.Calls)/r.Elapsed.Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tsamples\tRSS start MB\tRSS peak MB\tRSS end MB\tgoroutines start\tpeak\tend\t")
	for _, s := range r.Series {
		if len(s.Samples) == 0 {
			continue
		}
		first, last := s.Samples[0], s.Samples[len(s.Samples)-1]
		var peak int64
		pg := -1
		for _, x := range s.Samples {
			peak = max(peak, x.RSS)
			pg = max(pg, x.Goroutines)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%s\t%s\t%s\t\n", s.Name, len(s.Samples),
			mb(first.RSS), mb(peak), mb(last.RSS), gor(first.Goroutines), gor(pg), gor(last.Goroutines))
	}
	tw.Flush()
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func gor(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// Run starts a broker and cfg.Workers demo workers from bin, drives
// cfg.Calls echo calls and cfg.Streams count streams through them from
// this process, samples RSS and goroutines of every process, stops them
// and checks for errors and unbounded growth.
func Run(ctx context.Context, bin Binaries, cfg Config) (*Report, error) {
	cfg.defaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	front, back, bm, err := brokerAddrs()
	if err != nil {
		return nil, err
	}
	var procs []*Proc
	defer func() {
		for _, p := range procs {
			_ = p.Stop(5 * time.Second)
		}
	}()
	br, err := Start("gate-broker", bm, bin.Broker, "-frontend", front, "-backend", back,
		"-metrics-addr", bm, "-log-level", "warn", "-log-format", "text")
	if err != nil {
		return nil, err
	}
	procs = append(procs, br)
	if err := WaitHTTP(ctx, bm, "/healthz", 20*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, br.Output())
	}
	for i := range cfg.Workers {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		wm := fmt.Sprintf("127.0.0.1:%d", port)
		w, err := Start(fmt.Sprintf("gate-demo-worker-%d", i+1), wm, bin.Worker, "-broker", back,
			"-metrics-addr", wm, "-procs", "0", "-capacity", "1000", "-log-level", "warn", "-log-format", "text")
		if err != nil {
			return nil, err
		}
		procs = append(procs, w)
		if err := WaitHTTP(ctx, wm, "/healthz", 20*time.Second); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, w.Output())
		}
	}
	clients := make([]*gate.Client, cfg.Clients)
	for i := range clients {
		c, err := gate.NewClient(front, gate.WithTimeout(30*time.Second))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		clients[i] = c
	}
	// Every worker registered: the broker's gauge of live workers.
	if err := waitWorkers(ctx, bm, cfg.Workers); err != nil {
		return nil, err
	}

	rep := &Report{}
	series := make([]*Series, 0, len(procs)+1)
	for _, p := range procs {
		series = append(series, &Series{Name: p.Name, Pid: p.Pid()})
	}
	self := &Series{Name: "gate-soak (clients)", Pid: os.Getpid()}
	series = append(series, self)
	rep.Series = series

	total := int64(cfg.Calls + cfg.Streams)
	var done atomic.Int64
	start := time.Now()
	sample := func() {
		at := time.Since(start)
		prog := float64(done.Load()) / float64(total)
		for i, p := range procs {
			rss, err := RSS(p.Pid())
			if err != nil {
				continue
			}
			g := -1
			if m, err := Gauges(ctx, p.Metrics, "go_goroutines"); err == nil {
				if v, ok := m["go_goroutines"]; ok {
					g = int(v)
				}
			}
			series[i].Samples = append(series[i].Samples, Sample{At: at, Progress: prog, RSS: rss, Goroutines: g})
		}
		if rss, err := RSS(os.Getpid()); err == nil {
			self.Samples = append(self.Samples, Sample{At: at, Progress: prog, RSS: rss, Goroutines: runtime.NumGoroutine()})
		}
	}
	sample()
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(cfg.Sample)
		defer t.Stop()
		lastLog := time.Now()
		for {
			select {
			case <-stopSampler:
				return
			case <-t.C:
				sample()
				if time.Since(lastLog) >= 10*time.Second {
					lastLog = time.Now()
					fmt.Fprintf(cfg.Log, "soak: %v %d/%d operations, %d call errors, %d stream errors\n",
						time.Since(start).Round(time.Second), done.Load(), total,
						atomic.LoadInt64(&rep.CallErrors), atomic.LoadInt64(&rep.StreamErrors))
				}
			}
		}
	}()

	var errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		if len(rep.FirstErrors) < 5 {
			rep.FirstErrors = append(rep.FirstErrors, err.Error())
		}
		errMu.Unlock()
	}
	var nextCall, nextStream atomic.Int64
	var wg sync.WaitGroup
	for _, c := range clients {
		for range cfg.Concurrency {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := nextCall.Add(1)
					if i > int64(cfg.Calls) {
						return
					}
					err := echo(ctx, c, i)
					atomic.AddInt64(&rep.Calls, 1)
					done.Add(1)
					if err != nil {
						atomic.AddInt64(&rep.CallErrors, 1)
						fail(err)
					}
				}
			})
		}
		// Streams run alongside the calls, paced to end with them.
		wg.Go(func() {
			for ctx.Err() == nil {
				i := nextStream.Add(1)
				if i > int64(cfg.Streams) {
					return
				}
				for float64(nextCall.Load())/float64(cfg.Calls) < float64(i)/float64(cfg.Streams)-0.01 && ctx.Err() == nil {
					time.Sleep(2 * time.Millisecond)
				}
				n, err := count(ctx, c, cfg.StreamLen)
				atomic.AddInt64(&rep.Streams, 1)
				atomic.AddInt64(&rep.StreamItems, int64(n))
				done.Add(1)
				if err != nil {
					atomic.AddInt64(&rep.StreamErrors, 1)
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("run bound %v reached: %v", cfg.Timeout, err))
	}
	// Let the processes settle, then the final sample.
	time.Sleep(min(3*time.Second, 2*cfg.Sample))
	close(stopSampler)
	<-samplerDone
	sample()
	for _, c := range clients {
		c.Close()
	}
	for _, s := range series {
		rep.Problems = append(rep.Problems, growth(s)...)
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(15 * time.Second); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s exit: %v\n%s", procs[i].Name, err, procs[i].Output()))
		}
	}
	procs = nil
	return rep, nil
}

// growth compares the second half of the run with the samples taken
// between 10% and 50% of it: RSS may not grow by more than half plus
// 32 MiB, goroutines by more than half plus 32. A leak per call or per
// stream at these volumes grows far beyond both.
func growth(s *Series) []string {
	var base, late Sample
	var nb, nl int
	for _, x := range s.Samples {
		switch {
		case x.Progress >= 0.1 && x.Progress <= 0.5:
			base.RSS = max(base.RSS, x.RSS)
			base.Goroutines = max(base.Goroutines, x.Goroutines)
			nb++
		case x.Progress > 0.5:
			late.RSS = max(late.RSS, x.RSS)
			late.Goroutines = max(late.Goroutines, x.Goroutines)
			nl++
		}
	}
	if nb == 0 || nl == 0 {
		return nil
	}
	var out []string
	if late.RSS > base.RSS+base.RSS/2+32<<20 {
		out = append(out, fmt.Sprintf("%s: RSS grew from %.1f MB to %.1f MB", s.Name, mb(base.RSS), mb(late.RSS)))
	}
	if base.Goroutines >= 0 && late.Goroutines > base.Goroutines+base.Goroutines/2+32 {
		out = append(out, fmt.Sprintf("%s: goroutines grew from %d to %d", s.Name, base.Goroutines, late.Goroutines))
	}
	return out
}

func echo(ctx context.Context, c *gate.Client, i int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := c.Call(ctx, "demo.echo", i)
	if err != nil {
		return fmt.Errorf("echo %d: %w", i, err)
	}
	m, _ := v.(map[string]any)
	args, _ := m["args"].([]any)
	if len(args) != 1 || fmt.Sprint(args[0]) != strconv.FormatInt(i, 10) {
		return fmt.Errorf("echo %d: got %v", i, v)
	}
	return nil
}

func count(ctx context.Context, c *gate.Client, n int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := c.Stream(ctx, "demo.count", n)
	if err != nil {
		return 0, fmt.Errorf("count(%d): %w", n, err)
	}
	defer s.Close()
	got := 0
	for v, err := range s.All() {
		if err != nil {
			return got, fmt.Errorf("count(%d) after %d items: %w", n, got, err)
		}
		if fmt.Sprint(v) != strconv.Itoa(got) {
			return got, fmt.Errorf("count(%d): item %d is %v", n, got, v)
		}
		got++
	}
	if got != n {
		return got, fmt.Errorf("count(%d): %d items", n, got)
	}
	return got, nil
}

// waitWorkers waits until the broker's gaterpc_broker_live_workers gauge
// reaches n.
func waitWorkers(ctx context.Context, addr string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	var last map[string]float64
	for time.Now().Before(deadline) {
		m, err := Gauges(ctx, addr, "gaterpc_broker_live_workers")
		if err == nil && m["gaterpc_broker_live_workers"] >= float64(n) {
			return nil
		}
		last = m
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("broker has %v, want %d workers", last, n)
}
