package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clientResult is what a client role prints on stdout (one JSON line) when
// its run ends. Latencies are of the successful calls in the measured
// window, in microseconds.
type clientResult struct {
	Calls     int64   `json:"calls"`
	Errors    int64   `json:"errors"`
	ElapsedS  float64 `json:"elapsed_s"`
	Items     int64   `json:"items,omitempty"`
	Bytes     int64   `json:"bytes,omitempty"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	MeanUs    float64 `json:"mean_us"`
	LastError string  `json:"last_error,omitempty"`
	RSSIdleKB int64   `json:"rss_idle_kb,omitempty"`
	RSSPeakKB int64   `json:"rss_peak_kb,omitempty"`
}

// clientFlags are the flags every client role takes.
type clientFlags struct {
	connect  string
	inflight int
	size     int
	warmup   time.Duration
	duration time.Duration
}

func newClientFlags(name string, args []string, extra func(fs *flag.FlagSet)) (*clientFlags, error) {
	var c clientFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.connect, "connect", "", "endpoint or URL of the system under test")
	fs.IntVar(&c.inflight, "inflight", 1, "requests in flight")
	fs.IntVar(&c.size, "size", 64, "payload bytes")
	fs.DurationVar(&c.warmup, "warmup", 300*time.Millisecond, "load before the measured window")
	fs.DurationVar(&c.duration, "duration", time.Second, "measured window")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case c.connect == "":
		return nil, fmt.Errorf("%s: -connect is required", name)
	case c.inflight < 1 || c.size < 0 || c.duration <= 0 || c.warmup < 0:
		return nil, fmt.Errorf("%s: bad -inflight/-size/-duration/-warmup", name)
	}
	return &c, nil
}

// payload returns size bytes of a fixed, not very compressible pattern.
func payload(size int) []byte {
	b := make([]byte, size)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// window is the measured interval of a client run. It opens at the
// first completion after the warm-up once at least need calls completed
// (so that, with many large requests in flight, the first full cycle is
// not measured) and stays open for d; calls that complete inside count.
type window struct {
	warmEnd time.Time
	need    int64
	d       time.Duration
	giveUp  time.Time // stop waiting for the window to open
	done    atomic.Int64
	from    atomic.Int64 // unix ns; 0 until open
}

func newWindow(warmup, d time.Duration, need int) *window {
	now := time.Now()
	return &window{warmEnd: now.Add(warmup), need: int64(need), d: d, giveUp: now.Add(warmup + d + 60*time.Second)}
}

// complete notes a completion at now: in reports whether it counts,
// over whether the run is over (the window closed, or never opened).
func (w *window) complete(now time.Time) (in, over bool) {
	n := w.done.Add(1)
	f := w.from.Load()
	if f == 0 {
		if n < w.need || now.Before(w.warmEnd) {
			return false, now.After(w.giveUp)
		}
		w.from.CompareAndSwap(0, now.UnixNano())
		f = w.from.Load()
	}
	t := now.UnixNano()
	return t >= f && t < f+int64(w.d), t >= f+int64(w.d)
}

// over reports whether the window has closed at now (or never opened in
// time).
func (w *window) over(now time.Time) bool {
	f := w.from.Load()
	if f == 0 {
		return now.After(w.giveUp)
	}
	return now.UnixNano() >= f+int64(w.d)
}

// recorder collects latencies; one per goroutine, merged at the end.
type recorder struct {
	lat    []int64 // ns
	errors int64
	last   error
}

// record notes one call that ended at end after d; it reports whether
// the run is over.
func (r *recorder) record(w *window, end time.Time, d time.Duration, err error) bool {
	in, over := w.complete(end)
	if !in {
		return over
	}
	if err != nil {
		r.errors++
		r.last = err
		return over
	}
	r.lat = append(r.lat, int64(d))
	return over
}

func summarize(w *window, recs ...*recorder) clientResult {
	var all []int64
	var res clientResult
	for _, r := range recs {
		all = append(all, r.lat...)
		res.Errors += r.errors
		if r.last != nil {
			res.LastError = r.last.Error()
		}
	}
	res.Calls = int64(len(all))
	res.ElapsedS = w.d.Seconds()
	if w.from.Load() == 0 {
		res.Errors++
		res.LastError = fmt.Sprintf("the measured window never opened (%d calls completed, %d needed)", w.done.Load(), w.need)
	}
	if len(all) > 0 {
		slices.Sort(all)
		var sum float64
		for _, v := range all {
			sum += float64(v)
		}
		res.MeanUs = sum / float64(len(all)) / 1e3
		res.P50us = float64(quantile(all, .50)) / 1e3
		res.P99us = float64(quantile(all, .99)) / 1e3
	}
	return res
}

// quantile of sorted values, nearest rank.
func quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// closedLoop runs inflight goroutines that each make one blocking call
// after another until the window ends (or ctx is done).
func closedLoop(ctx context.Context, inflight int, w *window, call func(ctx context.Context) error) clientResult {
	recs := make([]*recorder, inflight)
	var wg sync.WaitGroup
	var stop atomic.Bool
	for i := range recs {
		recs[i] = &recorder{}
		wg.Add(1)
		go func(r *recorder) {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				err := call(ctx)
				t1 := time.Now()
				if r.record(w, t1, t1.Sub(t0), err) {
					stop.Store(true)
					return
				}
			}
		}(recs[i])
	}
	wg.Wait()
	return summarize(w, recs...)
}

// retry calls fn until it succeeds or d has passed: the systems under
// test come up asynchronously (a worker registers after the broker binds).
func retry(ctx context.Context, d time.Duration, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %v: %w", d, err)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// printResult writes res as one JSON line on stdout.
func printResult(res clientResult) error {
	return json.NewEncoder(os.Stdout).Encode(res)
}

// ready announces a server role's endpoints on stdout: "ready k=v ...".
func ready(kv ...string) {
	fmt.Println("ready " + strings.Join(kv, " "))
}

// procKB reads a field (VmRSS, VmHWM) of /proc/<pid>/status in KiB;
// pid 0 means this process.
func procKB(pid int, field string) int64 {
	p := "/proc/self/status"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// waitDone blocks until ctx is done: server roles run until the driver
// stops them.
func waitDone(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

var errShort = errors.New("reply does not match the request")
