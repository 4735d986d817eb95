package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
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
	Stream      bool    `json:"stream,omitempty"`
	Concurrency int     `json:"concurrency"`
	Connections int     `json:"connections"`
	Size        int     `json:"size"` // payload bytes; -1 with -d
	Rate        float64 `json:"rate,omitempty"`
	Total       int     `json:"n,omitempty"`
	WarmupS     float64 `json:"warmup_s,omitempty"`
	DurationS   float64 `json:"duration_s"`
	// Calls counts completed calls (streams with -stream), Errors the
	// failed ones among them; Items counts stream items.
	Calls     uint64            `json:"calls"`
	Errors    uint64            `json:"errors"`
	Items     uint64            `json:"items,omitempty"`
	ErrorKind map[string]uint64 `json:"error_codes,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	CallsPerS float64           `json:"calls_per_s"`
	ItemsPerS float64           `json:"items_per_s,omitempty"`
	// Latency of the successful calls (whole streams), in milliseconds.
	Latency   benchLatency `json:"latency_ms"`
	Histogram []benchBar   `json:"histogram"`
}

type benchLatency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

type benchBar struct {
	LoMS  float64 `json:"lo_ms"`
	HiMS  float64 `json:"hi_ms"`
	Count uint64  `json:"count"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Bounds of bench's load: each caller is a goroutine with a call in
// flight, each connection a client with its own socket and loop.
const (
	maxConcurrency = 10000
	maxConnections = 256
)

// benchWorker is one closed-loop caller; only its goroutine touches hist
// until the run ends.
type benchWorker struct {
	hist   histogram
	items  uint64
	errs   map[string]uint64
	last   error
	lastAt time.Time
}

// localError reports an error made on this side before anything was
// sent (an argument that cannot be encoded, a malformed method name):
// every call would fail the same way, so bench stops at once.
func localError(err error) bool {
	var ge *gate.Error
	return errors.As(err, &ge) && ge.Code == gate.InvalidArgument && ge.Traceback == "" &&
		strings.Contains(ge.Message, ": encode arguments: ")
}

func (a *app) bench(args []string) error {
	f := a.flags("bench")
	fs := f.FS
	service := f.String("service", "", "demo", "service to call")
	method := f.String("method", "", "echo", "method to call with one bin argument of -size bytes (echo-like), or the arguments of -d")
	concurrency := f.Int("concurrency", "", 4, fmt.Sprintf("closed-loop callers (1..%d)", maxConcurrency))
	connections := f.Int("connections", "", 1, fmt.Sprintf("clients (sockets) the callers are spread over (1..%d, at most -concurrency)", maxConnections))
	total := f.Int("n", "", 0, "total calls, then stop (0: run for -duration); -duration still bounds the run when given")
	duration := f.Duration("duration", "", 10*time.Second, "how long to run (SIGINT stops early, with a summary)")
	warmup := f.Duration("warmup", "", 0, "run this long first without recording (connections, caches, JIT of the peers)")
	size := f.Int("size", "", 128, "payload bytes per call (ignored with -d)")
	data := fs.String("d", "", `arguments as one JSON document instead of the -size payload: [arg, ...] or {"args": [...], "kwargs": {...}}; @FILE, - for stdin`)
	stream := fs.Bool("stream", false, "call a streaming method: latency is per whole stream, and items/s is reported")
	rate := f.Float("rate", "", 0, "total calls per second across callers; 0 = as fast as replies come")
	metricsAddr := f.String("metrics-addr", "GATE_METRICS_ADDR", "", "serve /metrics (rpc_client_*), /healthz on this address while running")
	pprof := f.Bool("pprof", "GATE_PPROF", false, "also serve /debug/pprof/ on -metrics-addr")
	pngPath := fs.String("histogram-png", "", "write the latency histogram as a PNG to this file")
	csvPath := fs.String("csv", "", "append the summary as a CSV row to this file (with a header when the file is new); - for stdout")
	progress := fs.Bool("progress", false, "print the progress line even when stderr is not a terminal")
	logFormat := f.String("log-format", "GATE_LOG_FORMAT", "auto", "log format with -metrics-addr: auto (tint text on a terminal, JSON otherwise), text or json")
	logLevel := f.String("log-level", "GATE_LOG_LEVEL", "warn", "log level with -metrics-addr")
	if err := f.Parse(args); err != nil {
		return err
	}
	durationSet := false
	fs.Visit(func(fl *flag.Flag) { durationSet = durationSet || fl.Name == "duration" })
	switch {
	case fs.NArg() > 0:
		return cli.Usagef("bench: unexpected arguments %q", fs.Args())
	case *concurrency < 1 || *concurrency > maxConcurrency:
		return cli.Usagef("bench: -concurrency %d: want 1..%d", *concurrency, maxConcurrency)
	case *connections < 1 || *connections > maxConnections:
		return cli.Usagef("bench: -connections %d: want 1..%d", *connections, maxConnections)
	case *connections > *concurrency:
		return cli.Usagef("bench: -connections %d: want at most -concurrency (%d)", *connections, *concurrency)
	case *concurrency / *connections > a.settings.MessageMax:
		return cli.Usagef("bench: %d callers per connection exceed the client's pending-call limit %d (GATE_MESSAGE_MAX): add -connections", *concurrency / *connections, a.settings.MessageMax)
	case *total < 0:
		return cli.Usagef("bench: -n %d: want >= 0", *total)
	case *duration <= 0:
		return cli.Usagef("bench: -duration %v: want > 0", *duration)
	case *warmup < 0:
		return cli.Usagef("bench: -warmup %v: want >= 0", *warmup)
	case *size < 0:
		return cli.Usagef("bench: -size %d: want >= 0", *size)
	case *rate < 0:
		return cli.Usagef("bench: -rate %v: want >= 0", *rate)
	}
	var callArgs []any
	var callKW map[string]any
	payloadSize := *size
	if *data != "" {
		var err error
		if callArgs, callKW, err = a.callArgs(*data, nil, nil); err != nil {
			return err
		}
		payloadSize = -1
	} else {
		payload := make([]byte, *size)
		rng := rand.NewChaCha8([32]byte{1})
		_, _ = rng.Read(payload)
		callArgs = []any{payload}
	}
	full := *service + "." + *method

	var opts []gate.ClientOption
	instrumented := false
	if *metricsAddr != "" {
		lvl, err := cli.LogLevel(*logLevel)
		if err != nil {
			return cli.UsageError{Err: err}
		}
		tel, err := setup.New(a.ctx, setup.Config{
			ServiceName: "gatectl", Role: gate.RoleClient.String(), MetricsAddr: *metricsAddr, Pprof: *pprof,
			LogFormat: *logFormat, LogLevel: lvl, LogWriter: a.stderr, NoGlobals: true,
		})
		if err != nil {
			return err
		}
		defer a.shutdown(tel)
		mw, err := tel.Middleware(telemetry.WithMethods(*service+"/"+*method), telemetry.WithServerAddress(a.g.broker))
		if err != nil {
			return err
		}
		opts = append(opts, gate.WithMiddleware(mw), gate.WithLogger(tel.Logger))
		instrumented = true
	}
	clients := make([]*gate.Client, *connections)
	for i := range clients {
		c, closeClient, err := a.client(instrumented, []string{*service + "/" + *method}, opts...)
		if err != nil {
			return err
		}
		defer closeClient()
		clients[i] = c
	}

	// one call (or stream) of the load; it returns the stream's items.
	one := func(ctx context.Context, c *gate.Client) (uint64, error) {
		if !*stream {
			_, err := c.CallKW(ctx, full, callArgs, callKW)
			return 0, err
		}
		s, err := c.StreamKW(ctx, full, callArgs, callKW)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		var n uint64
		for _, err := range s.All() {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	// A first call, alone: a local error (an unencodable payload) stops
	// bench before the load. Remote errors do not: a service whose
	// workers are still registering answers Unavailable for a moment.
	{
		cctx, cancel := context.WithTimeout(a.ctx, a.g.timeout)
		_, err := one(cctx, clients[0])
		cancel()
		if err != nil && localError(err) {
			return fmt.Errorf("bench: the first call of %s failed, no load started: %w", full, err)
		}
	}

	runLoad := func(d time.Duration, n int, record bool) (*benchResult, []*benchWorker, time.Duration, error) {
		runCtx, cancel := context.WithCancel(a.ctx)
		defer cancel()
		if d > 0 {
			var c2 context.CancelFunc
			runCtx, c2 = context.WithTimeout(runCtx, d)
			defer c2()
		}
		var interval time.Duration
		if *rate > 0 {
			interval = time.Duration(float64(*concurrency) / *rate * float64(time.Second))
		}
		var calls, failures, started atomic.Uint64
		var local atomic.Pointer[error]
		workers := make([]*benchWorker, *concurrency)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range workers {
			bw := &benchWorker{errs: map[string]uint64{}}
			workers[i] = bw
			c := clients[i%len(clients)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := start.Add(interval * time.Duration(i) / time.Duration(*concurrency))
				for runCtx.Err() == nil {
					if n > 0 && started.Add(1) > uint64(n) {
						return
					}
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
					items, err := one(cctx, c)
					d := time.Since(t0)
					ccancel()
					if err != nil && a.ctx.Err() != nil {
						return // interrupted: not the service's fault
					}
					calls.Add(1)
					bw.items += items
					if err != nil {
						failures.Add(1)
						bw.errs[gate.CodeOf(err).String()]++
						bw.last, bw.lastAt = err, time.Now()
						if localError(err) {
							local.CompareAndSwap(nil, &err)
							cancel()
						}
						continue
					}
					if record {
						bw.hist.record(d)
					}
				}
			}()
		}
		stopProgress := func() {}
		if record {
			stopProgress = a.startProgress(*progress, start, d, n, &calls, &failures)
		}
		wg.Wait()
		elapsed := time.Since(start)
		stopProgress()
		if p := local.Load(); p != nil {
			return nil, nil, 0, fmt.Errorf("bench: stopped at the first local error: %w", *p)
		}
		res := &benchResult{}
		res.Calls, res.Errors = calls.Load(), failures.Load()
		return res, workers, elapsed, nil
	}

	if *warmup > 0 {
		if _, _, _, err := runLoad(*warmup, 0, false); err != nil {
			return err
		}
	}
	limit := *duration
	if *total > 0 && !durationSet {
		limit = 0
	}
	part, workers, elapsed, err := runLoad(limit, *total, true)
	if err != nil {
		return err
	}

	var h histogram
	res := benchResult{Service: *service, Method: *method, Stream: *stream, Concurrency: *concurrency, Connections: *connections,
		Size: payloadSize, Rate: *rate, Total: *total, WarmupS: warmup.Seconds(),
		DurationS: elapsed.Seconds(), ErrorKind: map[string]uint64{}}
	var lastAt time.Time
	for _, bw := range workers {
		h.merge(&bw.hist)
		res.Items += bw.items
		for k, n := range bw.errs {
			res.ErrorKind[k] += n
		}
		if bw.last != nil && bw.lastAt.After(lastAt) {
			res.LastError, lastAt = bw.last.Error(), bw.lastAt
		}
	}
	res.Calls, res.Errors = part.Calls, part.Errors
	res.CallsPerS = float64(res.Calls) / elapsed.Seconds()
	if *stream {
		res.ItemsPerS = float64(res.Items) / elapsed.Seconds()
	}
	res.Latency = benchLatency{Min: ms(time.Duration(h.min)), Mean: ms(h.mean()), P50: ms(h.quantile(.5)),
		P90: ms(h.quantile(.9)), P95: ms(h.quantile(.95)), P99: ms(h.quantile(.99)), P999: ms(h.quantile(.999)),
		Max: ms(time.Duration(h.max))}
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
	if *csvPath != "" {
		if err := a.writeCSV(*csvPath, &res); err != nil {
			return err
		}
	}
	if *pngPath != "" {
		payload := fmt.Sprintf("%d bytes", payloadSize)
		if payloadSize < 0 {
			payload = "-d args"
		}
		title := fmt.Sprintf("gatectl bench %s  %d callers  %s  %.0f calls/s  %d errors", full, *concurrency, payload, res.CallsPerS, res.Errors)
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

// csvHeader names the columns of -csv (latencies in milliseconds).
var csvHeader = []string{"service", "method", "stream", "concurrency", "connections", "size", "rate", "duration_s",
	"calls", "errors", "items", "calls_per_s", "items_per_s",
	"min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms"}

// writeCSV appends r as a row to path (- is stdout), with the header
// first when the file is new or empty.
func (a *app) writeCSV(path string, r *benchResult) error {
	var w io.Writer = a.stdout
	header := true
	if path != "-" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("-csv: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			header = false
		}
		w = f
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	l := r.Latency
	cw := csv.NewWriter(w)
	if header {
		_ = cw.Write(csvHeader)
	}
	_ = cw.Write([]string{r.Service, r.Method, strconv.FormatBool(r.Stream), strconv.Itoa(r.Concurrency), strconv.Itoa(r.Connections),
		strconv.Itoa(r.Size), g(r.Rate), g(r.DurationS),
		strconv.FormatUint(r.Calls, 10), strconv.FormatUint(r.Errors, 10), strconv.FormatUint(r.Items, 10), g(r.CallsPerS), g(r.ItemsPerS),
		g(l.Min), g(l.Mean), g(l.P50), g(l.P90), g(l.P95), g(l.P99), g(l.P999), g(l.Max)})
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("-csv: %w", err)
	}
	return nil
}

func printBench(w io.Writer, r *benchResult, h *histogram, rows []bar, full string, elapsed time.Duration) {
	payload := fmt.Sprintf("%d-byte payload", r.Size)
	if r.Size < 0 {
		payload = "-d arguments"
	}
	kind := ""
	if r.Stream {
		kind = " (streams)"
	}
	fmt.Fprintf(w, "bench %s%s: %d callers on %d connection(s), %s, %s", full, kind, r.Concurrency, r.Connections, payload, elapsed.Round(time.Millisecond))
	if r.WarmupS > 0 {
		fmt.Fprintf(w, " after %gs warm-up", r.WarmupS)
	}
	if r.Rate > 0 {
		fmt.Fprintf(w, ", rate limit %g/s", r.Rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  calls     %d (%.1f/s)\n", r.Calls, r.CallsPerS)
	if r.Stream {
		fmt.Fprintf(w, "  items     %d (%.1f/s)\n", r.Items, r.ItemsPerS)
	}
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
	fmt.Fprintf(w, "  latency   min %s  mean %s  p50 %s  p90 %s  p95 %s  p99 %s  p99.9 %s  max %s\n",
		fmtDur(time.Duration(h.min)), fmtDur(h.mean()), fmtDur(h.quantile(.5)), fmtDur(h.quantile(.9)),
		fmtDur(h.quantile(.95)), fmtDur(h.quantile(.99)), fmtDur(h.quantile(.999)), fmtDur(time.Duration(h.max)))
	fmt.Fprintln(w, "\nlatency histogram (successful calls):")
	writeText(w, rows, 40)
}

func writePNGFile(path, title string, h *histogram) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	marks := []pngMark{{"p50", h.quantile(.5)}, {"p90", h.quantile(.9)}, {"p99", h.quantile(.99)}, {"p99.9", h.quantile(.999)}}
	err = writePNG(f, title, h, marks)
	return errors.Join(err, f.Close())
}

// startProgress prints a progress line on stderr once per second when
// stderr is a terminal (rewritten in place) or force is set (one line per
// second). The returned function stops it and waits for its goroutine.
func (a *app) startProgress(force bool, start time.Time, total time.Duration, n int, calls, failures *atomic.Uint64) func() {
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
				done := calls.Load()
				el := now.Sub(start).Round(time.Second)
				var line string
				if total > 0 {
					line = fmt.Sprintf("[%s/%s] %d calls, %d/s, %d errors", el, total, done, done-prev, failures.Load())
				} else {
					line = fmt.Sprintf("[%s] %d/%d calls, %d/s, %d errors", el, done, n, done-prev, failures.Load())
				}
				prev = done
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
