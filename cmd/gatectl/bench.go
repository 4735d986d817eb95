package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/telemetry"
	"github.com/gaterpc/gate/telemetry/setup"
)

// benchResult is the summary of a bench run; -json prints it as is.
type benchResult struct {
	Service     string  `json:"service"`
	Method      string  `json:"method"`
	Concurrency int     `json:"concurrency"`
	Size        int     `json:"size"`
	Rate        float64 `json:"rate,omitempty"`
	DurationS   float64 `json:"duration_s"`
	// Calls counts completed calls, Errors the failed ones among them.
	Calls     uint64            `json:"calls"`
	Errors    uint64            `json:"errors"`
	ErrorKind map[string]uint64 `json:"error_codes,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	CallsPerS float64           `json:"calls_per_s"`
	// Latency of the successful calls, in milliseconds.
	Latency   benchLatency `json:"latency_ms"`
	Histogram []benchBar   `json:"histogram"`
}

type benchLatency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

type benchBar struct {
	LoMS  float64 `json:"lo_ms"`
	HiMS  float64 `json:"hi_ms"`
	Count uint64  `json:"count"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// benchWorker is one closed-loop caller; only its goroutine touches hist
// until the run ends.
type benchWorker struct {
	hist   histogram
	errs   map[string]uint64
	last   error
	lastAt time.Time
}

func (a *app) bench(args []string) error {
	fs := a.flagSet("bench")
	f := cli.NewFlags(fs, a.getenv)
	service := f.String("service", "", "demo", "service to call")
	method := f.String("method", "", "echo", "method to call with one bin argument of -size bytes (echo-like)")
	concurrency := f.Int("concurrency", "", 4, "closed-loop callers")
	duration := f.Duration("duration", "", 10*time.Second, "how long to run (SIGINT stops early, with a summary)")
	size := f.Int("size", "", 128, "payload bytes per call")
	rate := f.Float("rate", "", 0, "total calls per second across callers; 0 = as fast as replies come")
	metricsAddr := f.String("metrics-addr", "GATE_METRICS_ADDR", "", "serve /metrics (rpc_client_*), /healthz on this address while running")
	pprof := f.Bool("pprof", "GATE_PPROF", false, "also serve /debug/pprof/ on -metrics-addr")
	pngPath := fs.String("histogram-png", "", "write the latency histogram as a PNG to this file")
	progress := fs.Bool("progress", false, "print the progress line even when stderr is not a terminal")
	logFormat := f.String("log-format", "GATE_LOG_FORMAT", "auto", "log format with -metrics-addr: auto, text or json")
	logLevel := f.String("log-level", "GATE_LOG_LEVEL", "warn", "log level with -metrics-addr")
	if err := f.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return cli.Usagef("bench: unexpected arguments %q", fs.Args())
	case *concurrency < 1:
		return cli.Usagef("bench: -concurrency %d: want at least 1", *concurrency)
	case *duration <= 0:
		return cli.Usagef("bench: -duration %v: want > 0", *duration)
	case *size < 0:
		return cli.Usagef("bench: -size %d: want >= 0", *size)
	case *rate < 0:
		return cli.Usagef("bench: -rate %v: want >= 0", *rate)
	}

	var opts []gate.CommonOption
	if *metricsAddr != "" {
		lvl, err := cli.LogLevel(*logLevel)
		if err != nil {
			return err
		}
		tel, err := setup.New(a.ctx, setup.Config{
			ServiceName: "gatectl", Role: gate.RoleClient.String(), MetricsAddr: *metricsAddr, Pprof: *pprof,
			LogFormat: *logFormat, LogLevel: lvl, LogWriter: a.stderr, NoGlobals: true,
		})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tel.Shutdown(sctx)
		}()
		mw, err := tel.Middleware(telemetry.WithMethods(*service + "/" + *method))
		if err != nil {
			return err
		}
		opts = append(opts, gate.WithMiddleware(mw), gate.WithLogger(tel.Logger))
	}
	c, err := a.client(opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	payload := make([]byte, *size)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(payload)
	full := *service + "." + *method

	runCtx, cancel := context.WithTimeout(a.ctx, *duration)
	defer cancel()
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(*concurrency) / *rate * float64(time.Second))
	}
	var calls, failures atomic.Uint64
	workers := make([]*benchWorker, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		bw := &benchWorker{errs: map[string]uint64{}}
		workers[i] = bw
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(interval * time.Duration(i) / time.Duration(*concurrency))
			for runCtx.Err() == nil {
				if interval > 0 {
					if !sleepUntil(runCtx, next) {
						return
					}
					next = next.Add(interval)
				}
				// A call started before the end may finish after it; only
				// the caller's signal (a.ctx) interrupts it.
				cctx, ccancel := context.WithTimeout(a.ctx, a.g.timeout)
				t0 := time.Now()
				_, err := c.Call(cctx, full, payload)
				d := time.Since(t0)
				ccancel()
				if err != nil && a.ctx.Err() != nil {
					return // interrupted: not the service's fault
				}
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					bw.errs[gate.CodeOf(err).String()]++
					bw.last, bw.lastAt = err, time.Now()
					continue
				}
				bw.hist.record(d)
			}
		}()
	}

	stopProgress := a.startProgress(*progress, start, *duration, &calls, &failures)
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	var h histogram
	res := benchResult{Service: *service, Method: *method, Concurrency: *concurrency, Size: *size, Rate: *rate,
		DurationS: elapsed.Seconds(), ErrorKind: map[string]uint64{}}
	var lastAt time.Time
	for _, bw := range workers {
		h.merge(&bw.hist)
		for k, n := range bw.errs {
			res.ErrorKind[k] += n
		}
		if bw.last != nil && bw.lastAt.After(lastAt) {
			res.LastError, lastAt = bw.last.Error(), bw.lastAt
		}
	}
	res.Calls, res.Errors = calls.Load(), failures.Load()
	res.CallsPerS = float64(res.Calls) / elapsed.Seconds()
	res.Latency = benchLatency{Min: ms(time.Duration(h.min)), Mean: ms(h.mean()), P50: ms(h.quantile(.5)),
		P90: ms(h.quantile(.9)), P99: ms(h.quantile(.99)), Max: ms(time.Duration(h.max))}
	rows := h.bars(16)
	for _, b := range rows {
		res.Histogram = append(res.Histogram, benchBar{LoMS: ms(b.Lo), HiMS: ms(b.Hi), Count: b.Count})
	}
	if len(res.ErrorKind) == 0 {
		res.ErrorKind = nil
	}

	if a.g.json {
		if err := a.printJSON(res, true); err != nil {
			return err
		}
	} else {
		printBench(a.stdout, &res, &h, rows, full, elapsed)
	}
	if *pngPath != "" {
		title := fmt.Sprintf("gatectl bench %s  %d callers  %dB  %.0f calls/s  %d errors", full, *concurrency, *size, res.CallsPerS, res.Errors)
		if err := writePNGFile(*pngPath, title, &h); err != nil {
			return err
		}
	}
	switch {
	case res.Calls == 0:
		return errors.New("bench: no call completed")
	case res.Errors > 0:
		fmt.Fprintf(a.stderr, "gatectl: bench: %d of %d calls failed; last: %s\n", res.Errors, res.Calls, res.LastError)
		return cli.ExitError{Code: 1}
	}
	return nil
}

func printBench(w io.Writer, r *benchResult, h *histogram, rows []bar, full string, elapsed time.Duration) {
	fmt.Fprintf(w, "bench %s: %d callers, %d-byte payload, %s", full, r.Concurrency, r.Size, elapsed.Round(time.Millisecond))
	if r.Rate > 0 {
		fmt.Fprintf(w, ", rate limit %g/s", r.Rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  calls     %d (%.1f/s)\n", r.Calls, r.CallsPerS)
	errs := fmt.Sprint(r.Errors)
	if len(r.ErrorKind) > 0 {
		var kinds []string
		for _, k := range sortedKeys(r.ErrorKind) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, r.ErrorKind[k]))
		}
		errs += " (" + strings.Join(kinds, ", ") + ")"
	}
	fmt.Fprintf(w, "  errors    %s\n", errs)
	if h.n == 0 {
		return
	}
	fmt.Fprintf(w, "  latency   min %s  mean %s  p50 %s  p90 %s  p99 %s  max %s\n",
		fmtDur(time.Duration(h.min)), fmtDur(h.mean()), fmtDur(h.quantile(.5)), fmtDur(h.quantile(.9)),
		fmtDur(h.quantile(.99)), fmtDur(time.Duration(h.max)))
	fmt.Fprintln(w, "\nlatency histogram (successful calls):")
	writeText(w, rows, 40)
}

func writePNGFile(path, title string, h *histogram) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	marks := []pngMark{{"p50", h.quantile(.5)}, {"p90", h.quantile(.9)}, {"p99", h.quantile(.99)}}
	err = writePNG(f, title, h, marks)
	return errors.Join(err, f.Close())
}

// startProgress prints a progress line on stderr once per second when
// stderr is a terminal (rewritten in place) or force is set (one line per
// second). The returned function stops it and waits for its goroutine.
func (a *app) startProgress(force bool, start time.Time, total time.Duration, calls, failures *atomic.Uint64) func() {
	tty := isTerminal(a.stderr)
	if !tty && !force {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var prev uint64
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprint(a.stderr, "\r\033[K")
				}
				return
			case now := <-t.C:
				n := calls.Load()
				el := now.Sub(start).Round(time.Second)
				line := fmt.Sprintf("[%s/%s] %d calls, %d/s, %d errors", el, total, n, n-prev, failures.Load())
				prev = n
				if tty {
					fmt.Fprint(a.stderr, "\r\033[K"+line)
				} else {
					fmt.Fprintln(a.stderr, line)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// sleepUntil waits until t or ctx's end; it reports whether t came first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
