package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/telemetry"
	"github.com/gaterpc/gate/telemetry/setup"
)

// runGateClient is the gate load generator, built on the gate library's
// Client as an application would use it. Modes:
//
//	echo    closed loop of demo.echo(payload) calls, -inflight goroutines
//	stream  -inflight concurrent streams of bench.items(n, -size), read
//	        until the window ends; items/s
//	huge    demo.blob(-size) calls one after another; MB/s of the
//	        decoded replies and the process's peak RSS
//
// With -telemetry the client gets what gatectl bench -metrics-addr gets:
// telemetry/setup's middleware (tracing, RED metrics, logging) and a
// /metrics server; traces are exported only when the OTEL_* environment
// configures an exporter (the driver points it at its OTLP sink).
func runGateClient(ctx context.Context, args []string) error {
	var mode, metricsAddr string
	var tel bool
	var calls int
	var hf hugeFlags
	var pause time.Duration
	cf, err := newClientFlags("gate-client", args, func(fs *flag.FlagSet) {
		fs.StringVar(&mode, "mode", "echo", "echo, stream, huge or pause")
		fs.BoolVar(&tel, "telemetry", false, "client telemetry (telemetry/setup middleware)")
		fs.StringVar(&metricsAddr, "metrics-addr", "", "with -telemetry: /metrics listen address")
		fs.IntVar(&calls, "calls", 1, "huge: at least this many calls")
		fs.BoolVar(&hf.reader, "reader", false, "huge: read the reply with Client.CallReader (streamed) instead of Client.Call")
		fs.Float64Var(&hf.rate, "rate", 0, "huge with -reader: read at most this many bytes/s (0: as fast as possible)")
		fs.DurationVar(&pause, "pause", 60*time.Second, "pause: how long the reader stops reading")
	})
	if err != nil {
		return err
	}
	set, err := gate.SettingsFromEnv(os.Getenv) // GATE_HUGE_DATA_MAX_SIZE for the 1 GiB reader
	if err != nil {
		return err
	}
	opts := []gate.CommonOption{gate.WithSettings(set)}
	if tel {
		t, err := setup.New(ctx, setup.Config{
			ServiceName: "bench-client", Role: gate.RoleClient.String(), MetricsAddr: metricsAddr,
			LogFormat: "json", LogLevel: slog.LevelInfo, LogWriter: os.Stderr, NoGlobals: true,
		})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = t.Shutdown(sctx)
		}()
		mw, err := t.Middleware(telemetry.WithMethods("demo/echo", "demo/blob", "bench/items"))
		if err != nil {
			return err
		}
		opts = append(opts, gate.WithMiddleware(mw), gate.WithLogger(t.Logger))
	}
	copts := make([]gate.ClientOption, 0, len(opts))
	for _, o := range opts {
		copts = append(copts, o)
	}
	c, err := gate.NewClient(cf.connect, copts...)
	if err != nil {
		return err
	}
	defer c.Close()
	var res clientResult
	switch mode {
	case "echo":
		res, err = gateEcho(ctx, c, cf)
	case "stream":
		res, err = gateStream(ctx, c, cf)
	case "huge":
		res, err = gateHuge(ctx, c, cf, calls, hf)
	case "pause":
		res, err = gatePause(ctx, c, cf, pause)
	default:
		err = fmt.Errorf("gate-client: unknown -mode %q", mode)
	}
	if err != nil {
		return err
	}
	return printResult(res)
}

func gateEcho(ctx context.Context, c *gate.Client, cf *clientFlags) (clientResult, error) {
	p := payload(cf.size)
	call := func(ctx context.Context) error {
		v, err := c.Call(ctx, "demo.echo", p)
		if err != nil {
			return err
		}
		if m, ok := v.(map[string]any); !ok || m["args"] == nil {
			return fmt.Errorf("%w: %T", errShort, v)
		}
		return nil
	}
	if err := retry(ctx, 20*time.Second, call); err != nil {
		return clientResult{}, err
	}
	w := newWindow(cf.warmup, cf.duration, cf.inflight)
	return closedLoop(ctx, cf.inflight, w, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return call(cctx)
	}), nil
}

// gateStream reads -inflight streams of 100-byte (-size) items at once.
func gateStream(ctx context.Context, c *gate.Client, cf *clientFlags) (clientResult, error) {
	const n = 100_000_000 // endless in practice: the window ends first
	if err := retry(ctx, 20*time.Second, func(ctx context.Context) error {
		_, err := c.Call(ctx, "bench.items", 1, cf.size)
		return err
	}); err != nil {
		return clientResult{}, err
	}
	w := newWindow(cf.warmup, cf.duration, cf.inflight)
	var items, nbytes atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, cf.inflight)
	for i := range cf.inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithDeadline(ctx, w.giveUp.Add(30*time.Second))
			defer cancel()
			s, err := c.Stream(sctx, "bench.items", n, cf.size)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			for {
				v, err := s.Recv()
				if err != nil {
					errs[i] = err
					return
				}
				in, over := w.complete(time.Now())
				if over {
					return
				}
				if in {
					b, _ := v.([]byte)
					if len(b) != cf.size {
						errs[i] = fmt.Errorf("%w: item %T of %d bytes", errShort, v, len(b))
						return
					}
					items.Add(1)
					nbytes.Add(int64(len(b)))
				}
			}
		}()
	}
	wg.Wait()
	res := clientResult{Items: items.Load(), Bytes: nbytes.Load(), ElapsedS: w.d.Seconds()}
	if w.from.Load() == 0 {
		errs = append(errs, errors.New("the measured window never opened"))
	}
	for _, err := range errs {
		if err != nil {
			res.Errors++
			res.LastError = err.Error()
		}
	}
	return res, nil
}

// hugeFlags are the gate-client flags of the huge mode.
type hugeFlags struct {
	reader bool    // Client.CallReader + gate.ReadBinary instead of Client.Call
	rate   float64 // bytes/s the reader consumes at most; 0 = unlimited
}

// gateHuge calls demo.blob(-size) one call after another for at least
// -calls calls and -duration, and reports the decoded bytes per second.
// With -reader the reply is read as a stream (Client.CallReader), at most
// -rate bytes/s, so that neither end holds the value.
func gateHuge(ctx context.Context, c *gate.Client, cf *clientFlags, calls int, hf hugeFlags) (clientResult, error) {
	if err := retry(ctx, 20*time.Second, func(ctx context.Context) error {
		_, err := c.Call(ctx, "demo.blob", 16)
		return err
	}); err != nil {
		return clientResult{}, err
	}
	idle := procKB(0, "VmRSS")
	var lat []int64
	var res clientResult
	start := time.Now()
	var got int64
	var n int
	for n = 0; n < calls || time.Since(start) < cf.duration; n++ {
		timeout := 120 * time.Second
		if hf.rate > 0 {
			timeout += time.Duration(float64(cf.size) / hf.rate * float64(time.Second))
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		t0 := time.Now()
		var size int64
		var err error
		if hf.reader {
			size, err = readBlob(cctx, c, cf.size, hf.rate)
		} else {
			var v any
			if v, err = c.Call(cctx, "demo.blob", cf.size); err == nil {
				b, _ := v.([]byte)
				size = int64(len(b))
			}
		}
		cancel()
		d := time.Since(t0)
		if err == nil && size != int64(cf.size) {
			err = fmt.Errorf("%w: %d of %d bytes", errShort, size, cf.size)
		}
		if err != nil {
			res.Errors++
			res.LastError = err.Error()
			break // a failed huge call is reported, not retried
		}
		got += size
		lat = append(lat, int64(d))
		if ctx.Err() != nil {
			break
		}
	}
	res.ElapsedS = time.Since(start).Seconds()
	slices.Sort(lat)
	res.Calls = int64(len(lat))
	res.P50us, res.P99us = float64(quantile(lat, .5))/1e3, float64(quantile(lat, .99))/1e3
	res.Bytes = got
	res.RSSIdleKB, res.RSSPeakKB = idle, procKB(0, "VmHWM")
	return res, nil
}

// readBlob reads demo.blob(size) with Client.CallReader, at most rate
// bytes/s (0: unlimited), and returns the number of payload bytes read.
func readBlob(ctx context.Context, c *gate.Client, size int, rate float64) (int64, error) {
	r, err := c.CallReader(ctx, "demo.blob", size)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	body, n, err := gate.ReadBinary(r)
	if err != nil {
		return 0, err
	}
	if n != int64(size) {
		return 0, fmt.Errorf("%w: bin of %d bytes, want %d", errShort, n, size)
	}
	buf := make([]byte, 256<<10)
	var read int64
	start := time.Now()
	for {
		k, err := body.Read(buf)
		read += int64(k)
		if err == io.EOF {
			return read, nil
		}
		if err != nil {
			return read, err
		}
		if rate > 0 { // sleep until the bytes read so far are due
			due := start.Add(time.Duration(float64(read) / rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return read, ctx.Err()
				}
			}
		}
	}
}

// gatePause reads demo.count(2^40) (an endless stream of 0, 1, 2, ...)
// for -duration, stops reading for -pause, then reads for -duration
// again, checking that every integer arrives once and in order. Items is
// the count read, Errors counts a gap, a repeat or a failure; the RSS
// fields are the client's own.
func gatePause(ctx context.Context, c *gate.Client, cf *clientFlags, pause time.Duration) (clientResult, error) {
	if err := retry(ctx, 20*time.Second, func(ctx context.Context) error {
		_, err := c.Call(ctx, "demo.echo", 1)
		return err
	}); err != nil {
		return clientResult{}, err
	}
	idle := procKB(0, "VmRSS")
	sctx, cancel := context.WithTimeout(ctx, pause+2*cf.duration+60*time.Second)
	defer cancel()
	s, err := gate.StreamAs[int64](sctx, c, "demo.count", int64(1)<<40)
	if err != nil {
		return clientResult{}, err
	}
	defer s.Close()
	var res clientResult
	var next int64
	read := func(d time.Duration) error {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			v, err := s.Recv()
			if err != nil {
				return err
			}
			if v != next {
				return fmt.Errorf("item %d arrived where %d was due: lost or reordered", v, next)
			}
			next++
		}
		return nil
	}
	start := time.Now()
	err = read(cf.duration)
	if err == nil {
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		err = read(cf.duration)
	}
	if err != nil {
		res.Errors, res.LastError = 1, err.Error()
	}
	res.Items, res.ElapsedS = next, time.Since(start).Seconds()
	res.RSSIdleKB, res.RSSPeakKB = idle, procKB(0, "VmHWM")
	return res, nil
}

// runGateStreamWorker serves bench.items(n, size): a stream of n items of
// size bytes each. The demo service has no stream of sized items (its
// count(n) streams small integers), so this worker, built on the same
// gate.Worker as gate-demo-worker, provides one.
func runGateStreamWorker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gate-stream-worker", flag.ContinueOnError)
	ep := fs.String("connect", "", "broker backend endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc, err := gate.NewService("bench", "compare's stream source")
	if err != nil {
		return err
	}
	err = svc.Register("items", func(ctx context.Context, n, size int) (iter.Seq[[]byte], error) {
		if n < 0 || size < 0 || size > 1<<20 {
			return nil, gate.Errorf(gate.InvalidArgument, "items(n, size): bad n %d or size %d", n, size)
		}
		item := payload(size)
		return func(yield func([]byte) bool) {
			for i := 0; i < n && ctx.Err() == nil; i++ {
				if !yield(item) {
					return
				}
			}
		}, nil
	})
	if err != nil {
		return err
	}
	w, err := svc.NewWorker(*ep, gate.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	ready("connected=" + *ep)
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = w.Shutdown(sctx)
		cancel()
		err = <-errc
	}
	if errors.Is(err, gate.ErrClosed) {
		err = nil
	}
	return err
}

// runOTLPSink is the trace collector of the tracing rows: an OTLP/HTTP
// endpoint (POST /v1/traces) that reads each export request to the end,
// counts it and throws it away, answering with an empty (valid)
// ExportTraceServiceResponse. GET /stats returns "requests bytes".
func runOTLPSink(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("otlp-sink", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var reqs, nbytes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		reqs.Add(1)
		nbytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%d %d\n", reqs.Load(), nbytes.Load())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready("url=http://" + ln.Addr().String())
	select {
	case err = <-errc:
	case <-ctx.Done():
		_ = srv.Close()
		<-errc
		err = nil
	}
	return err
}
