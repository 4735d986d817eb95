package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// config is the driver's flags.
type config struct {
	Rounds         int           `json:"rounds"`
	Duration       time.Duration `json:"duration_ns"`
	Warmup         time.Duration `json:"warmup_ns"`
	Inflight       []int         `json:"inflight"`
	Sizes          []int         `json:"sizes"`
	TelemetrySizes []int         `json:"telemetry_sizes"`
	MaxInflightB   int           `json:"max_inflight_bytes"`
	Systems        []string      `json:"systems"`
	StreamSize     int           `json:"stream_size"`
	StreamInflight []int         `json:"stream_inflight"`
	StreamDuration time.Duration `json:"stream_duration_ns"`
	HugeSizes      []int         `json:"huge_sizes"`
	HugeCalls      int           `json:"huge_calls"`
	HugeCompress   []string      `json:"huge_compress"`
	HugeReader     []int         `json:"huge_reader_sizes"`
	SlowSize       int           `json:"slow_reader_size"`
	SlowRate       float64       `json:"slow_reader_rate"`
	Pause          time.Duration `json:"pause_ns"`
	Timeout        time.Duration `json:"timeout_ns"`

	brokerBin, workerBin string
	jsonOut              bool
	mdPath, pngPath      string
	jsonPath             string
	logDir               string
}

// systems, in the order of the table.
var allSystems = []string{"nats", "zmq_proxy", "gate-broker-raw", "gate", "gate-metrics", "gate-trace10", "gate-trace100"}

var systemLabel = map[string]string{
	"nats":            "NATS request-reply (nats-server, queue-group responder)",
	"zmq_proxy":       "libzmq zmq_proxy, raw DEALER client and echo",
	"gate-broker-raw": "gate-broker, raw gaterpc-wire client and worker",
	"gate":            "gate full stack, telemetry off",
	"gate-metrics":    "gate full stack, metrics + logs",
	"gate-trace10":    "gate full stack, metrics + logs + tracing 10%",
	"gate-trace100":   "gate full stack, metrics + logs + tracing 100%",
}

// telemetryMode reports whether a system is a telemetry variant of gate,
// measured only at -telemetry-sizes.
func telemetryMode(sys string) bool {
	return strings.HasPrefix(sys, "gate-") && sys != "gate-broker-raw"
}

func parseConfig(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds; each runs every workload on every system, systems alternating")
	fs.DurationVar(&c.Duration, "duration", time.Second, "measured window of each run")
	fs.DurationVar(&c.Warmup, "warmup", 300*time.Millisecond, "load before each measured window")
	inflight := fs.String("inflight", "1,64,256", "requests in flight (comma-separated)")
	sizes := fs.String("sizes", "64,1024,65536,1048576", "payload sizes in bytes (comma-separated)")
	tsizes := fs.String("telemetry-sizes", "64", "sizes at which the gate telemetry modes run")
	fs.IntVar(&c.MaxInflightB, "max-inflight-bytes", 64<<20, "skip workloads whose in-flight payload (inflight × size) is larger")
	systems := fs.String("systems", strings.Join(allSystems, ","), "systems to run (comma-separated)")
	fs.IntVar(&c.StreamSize, "stream-size", 100, "stream item size in bytes")
	streamInflight := fs.String("stream-inflight", "1", "concurrent streams (comma-separated); empty: no stream rows")
	fs.DurationVar(&c.StreamDuration, "stream-duration", 2*time.Second, "measured window of a stream run")
	hugeSizes := fs.String("huge-sizes", "8388608,100000000", "HugeData reply sizes in bytes (demo.blob, comma-separated); empty: no HugeData rows")
	fs.IntVar(&c.HugeCalls, "huge-calls", 1, "HugeData calls per run")
	compress := fs.String("huge-compress", "gzip,zstd", "HugeData compressors (the worker's GATE_HUGE_DATA_COMPRESS)")
	hugeReader := fs.String("huge-reader-sizes", "100000000", "HugeData reply sizes read with Client.CallReader (streamed), every compressor; empty: none")
	fs.IntVar(&c.SlowSize, "slow-reader-size", 1<<30, "HugeData reply (zstd) read by a reader limited to -slow-reader-rate, once (round 1); 0: none")
	fs.Float64Var(&c.SlowRate, "slow-reader-rate", 10e6, "bytes/s of the -slow-reader-size reader")
	fs.DurationVar(&c.Pause, "pause", 60*time.Second, "endless stream whose reader stops this long, then resumes, once (round 1); 0: none")
	fs.DurationVar(&c.Timeout, "timeout", 20*time.Minute, "bound of the whole run")
	fs.StringVar(&c.brokerBin, "gate-broker", "bin/gate-broker", "gate-broker binary (go build ../cmd/gate-broker)")
	fs.StringVar(&c.workerBin, "gate-demo-worker", "bin/gate-demo-worker", "gate-demo-worker binary (go build ../cmd/gate-demo-worker)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of the table")
	fs.StringVar(&c.jsonPath, "json-file", "", "also write the JSON report to this file")
	fs.StringVar(&c.mdPath, "md", "", "write BENCHMARKS.md (table, machine, command) to this file")
	fs.StringVar(&c.pngPath, "png", "", "write the chart to this PNG file")
	fs.StringVar(&c.logDir, "logs", "", "directory for the children's stderr (default: a new temp dir)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (roles: %s)", fs.Args(), strings.Join(roleNames(), ", "))
	}
	var err error
	if c.Inflight, err = ints(*inflight); err != nil {
		return nil, fmt.Errorf("-inflight: %w", err)
	}
	if c.Sizes, err = ints(*sizes); err != nil {
		return nil, fmt.Errorf("-sizes: %w", err)
	}
	if c.TelemetrySizes, err = ints(*tsizes); err != nil {
		return nil, fmt.Errorf("-telemetry-sizes: %w", err)
	}
	if c.HugeSizes, err = ints(*hugeSizes); err != nil {
		return nil, fmt.Errorf("-huge-sizes: %w", err)
	}
	if c.HugeReader, err = ints(*hugeReader); err != nil {
		return nil, fmt.Errorf("-huge-reader-sizes: %w", err)
	}
	if c.StreamInflight, err = ints(*streamInflight); err != nil {
		return nil, fmt.Errorf("-stream-inflight: %w", err)
	}
	for _, s := range strings.Split(*systems, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if systemLabel[s] == "" {
			return nil, fmt.Errorf("-systems: unknown %q (known: %s)", s, strings.Join(allSystems, ", "))
		}
		c.Systems = append(c.Systems, s)
	}
	for _, s := range strings.Split(*compress, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.HugeCompress = append(c.HugeCompress, s)
		}
	}
	if c.Rounds < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Timeout <= 0 {
		return nil, errors.New("-rounds, -duration and -timeout must be positive")
	}
	return c, nil
}

func roleNames() []string {
	var r []string
	for k := range roles {
		r = append(r, k)
	}
	return r
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func (c *config) has(sys string) bool {
	for _, s := range c.Systems {
		if s == sys {
			return true
		}
	}
	return false
}

// stack is one running system under test: its server processes and how
// a client reaches it.
type stack struct {
	sys        string
	clientRole string
	connect    string
	clientArgs []string
	env        []string
	scrape     []string // /metrics URLs scraped while its clients run
	children   []*child
	broker     *child // gate stacks
	worker     *child
}

func (s *stack) down() error {
	for _, c := range s.children {
		if !c.alive() {
			return fmt.Errorf("%w: %s (%s; log %s)", errStackDown, c.name, exitText(c), c.log)
		}
	}
	return nil
}

// driver runs the schedule.
type driver struct {
	cfg    *config
	self   string
	p      *procs
	stacks map[string]*stack
	sink   string // OTLP sink base URL
	rep    *report
	nrun   int
	total  int
}

func runDriver(ctx context.Context, args []string) (err error) {
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, b := range []*string{&cfg.brokerBin, &cfg.workerBin} {
		if *b, err = filepath.Abs(*b); err != nil {
			return err
		}
		if _, err := os.Stat(*b); err != nil {
			return fmt.Errorf("%w (make compare builds it; or pass -gate-broker/-gate-demo-worker)", err)
		}
	}
	if cfg.logDir == "" {
		if cfg.logDir, err = os.MkdirTemp("", "gate-compare-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		return err
	}
	d := &driver{cfg: cfg, self: self, p: newProcs(cfg.logDir), stacks: map[string]*stack{}}
	defer d.p.stopAll() // every child ends with the run, whatever happened
	d.rep = newReport(cfg, os.Args)
	fmt.Fprintf(os.Stderr, "compare: children's logs in %s\n", cfg.logDir)

	if err := d.startStacks(ctx); err != nil {
		return err
	}
	d.total = d.countRuns()
	start := time.Now()
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		d.runRound(ctx, round)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run stopped after %v: %w", time.Since(start).Round(time.Second), err)
	}
	d.rep.Sink = d.sinkStats()
	d.p.stopAll()
	d.rep.finish(time.Since(start))

	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d.rep); err != nil {
			return err
		}
	} else {
		fmt.Print(d.rep.text())
	}
	if cfg.jsonPath != "" {
		b, _ := json.MarshalIndent(d.rep, "", "  ")
		if err := os.WriteFile(cfg.jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if cfg.pngPath != "" {
		if err := writeChartFile(cfg.pngPath, d.rep); err != nil {
			return err
		}
	}
	if cfg.mdPath != "" {
		if err := os.WriteFile(cfg.mdPath, []byte(d.rep.markdown(cfg.mdPath, cfg.pngPath)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startStacks starts the long-lived server processes of every system.
func (d *driver) startStacks(ctx context.Context) error {
	env := baseEnv()
	start := func(name string, args ...string) (*child, map[string]string, error) {
		c, err := d.p.start(name, env, d.self, args...)
		if err != nil {
			return nil, nil, err
		}
		kv, err := c.waitReady(ctx, 20*time.Second)
		return c, kv, err
	}
	if d.cfg.has("nats") {
		srv, kv, err := start("nats-server", "nats-server")
		if err != nil {
			return err
		}
		echo, _, err := start("nats-echo", "nats-echo", "-connect", kv["url"])
		if err != nil {
			return err
		}
		d.stacks["nats"] = &stack{sys: "nats", clientRole: "nats-client", connect: kv["url"], env: env, children: []*child{srv, echo}}
	}
	if d.cfg.has("zmq_proxy") {
		px, kv, err := start("zmq-proxy", "zmq-proxy")
		if err != nil {
			return err
		}
		echo, _, err := start("zmq-echo", "zmq-echo", "-connect", kv["backend"])
		if err != nil {
			return err
		}
		d.stacks["zmq_proxy"] = &stack{sys: "zmq_proxy", clientRole: "zmq-client", connect: kv["frontend"], env: env, children: []*child{px, echo}}
	}
	if d.cfg.has("gate-broker-raw") {
		s, err := d.startGate(ctx, "gate-broker-raw", env, false, nil)
		if err != nil {
			return err
		}
		w, _, err := start("raw-worker", "raw-worker", "-connect", s.backend)
		if err != nil {
			return err
		}
		s.children = append(s.children, w)
		s.clientRole = "raw-client"
		d.stacks["gate-broker-raw"] = s.stack
	}
	var traced bool
	for _, sys := range d.cfg.Systems {
		traced = traced || strings.HasPrefix(sys, "gate-trace")
	}
	if traced {
		_, kv, err := start("otlp-sink", "otlp-sink")
		if err != nil {
			return err
		}
		d.sink = kv["url"]
	}
	for _, sys := range []string{"gate", "gate-metrics", "gate-trace10", "gate-trace100"} {
		if !d.cfg.has(sys) {
			continue
		}
		genv := append([]string(nil), env...)
		switch sys {
		case "gate-trace10":
			genv = append(genv, otelEnv(d.sink, "parentbased_traceidratio", "0.1")...)
		case "gate-trace100":
			genv = append(genv, otelEnv(d.sink, "parentbased_always_on", "")...)
		}
		s, err := d.startGate(ctx, sys, genv, sys != "gate", nil)
		if err != nil {
			return err
		}
		if err := d.startDemoWorker(s, genv, sys != "gate"); err != nil {
			return err
		}
		s.clientRole = "gate-client"
		if sys != "gate" {
			port, err := freePort()
			if err != nil {
				return err
			}
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			s.clientArgs = append(s.clientArgs, "-telemetry", "-metrics-addr", addr)
			s.scrape = append(s.scrape, "http://"+addr+"/metrics")
		}
		d.stacks[sys] = s.stack
		if sys == "gate" && len(d.cfg.StreamInflight) > 0 {
			w, _, err := start("gate-stream-worker", "gate-stream-worker", "-connect", s.backend)
			if err != nil {
				return err
			}
			s.children = append(s.children, w)
		}
	}
	return nil
}

// otelEnv configures the OTLP/HTTP trace exporter of telemetry/setup
// toward the sink, with a parent-based sampler.
func otelEnv(sink, sampler, arg string) []string {
	env := []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + sink,
		"OTEL_TRACES_SAMPLER=" + sampler,
	}
	if arg != "" {
		env = append(env, "OTEL_TRACES_SAMPLER_ARG="+arg)
	}
	return env
}

type gateStack struct {
	*stack
	backend string
}

// startGate starts a gate-broker binary on two free ports. metrics: a
// /metrics server (scraped during the runs) and Info logs; else Warn logs
// and no HTTP server.
func (d *driver) startGate(ctx context.Context, sys string, env []string, metrics bool, extra []string) (*gateStack, error) {
	fp, err := freePort()
	if err != nil {
		return nil, err
	}
	bp, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &gateStack{stack: &stack{sys: sys, env: env, connect: fmt.Sprintf("tcp://127.0.0.1:%d", fp)}, backend: fmt.Sprintf("tcp://127.0.0.1:%d", bp)}
	args := []string{"-frontend", s.connect, "-backend", s.backend, "-log-format", "json", "-log-level", "warn"}
	if metrics {
		mp, err := freePort()
		if err != nil {
			return nil, err
		}
		args = append(args, "-metrics-addr", fmt.Sprintf("127.0.0.1:%d", mp))
		args[len(args)-3] = "info"
		s.scrape = append(s.scrape, fmt.Sprintf("http://127.0.0.1:%d/metrics", mp))
	}
	b, err := d.p.start(sys+"-broker", env, d.cfg.brokerBin, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	s.children = append(s.children, b)
	s.broker = b
	return s, nil
}

// startDemoWorker starts a gate-demo-worker (one worker, no process
// pool) on s's backend.
func (d *driver) startDemoWorker(s *gateStack, env []string, metrics bool) error {
	args := []string{"-broker", s.backend, "-procs", "0", "-workers", "1", "-log-format", "json", "-log-level", "warn"}
	if metrics {
		mp, err := freePort()
		if err != nil {
			return err
		}
		args = append(args, "-metrics-addr", fmt.Sprintf("127.0.0.1:%d", mp))
		args[len(args)-3] = "info"
		s.scrape = append(s.scrape, fmt.Sprintf("http://127.0.0.1:%d/metrics", mp))
	}
	w, err := d.p.start(s.sys+"-worker", env, d.cfg.workerBin, args...)
	if err != nil {
		return err
	}
	s.children = append(s.children, w)
	s.worker = w
	return nil
}

type workload struct{ inflight, size int }

func (d *driver) workloads() []workload {
	var ws []workload
	for _, n := range d.cfg.Inflight {
		for _, sz := range d.cfg.Sizes {
			if n*sz <= d.cfg.MaxInflightB {
				ws = append(ws, workload{n, sz})
			}
		}
	}
	return ws
}

func (d *driver) systemsFor(w workload) []string {
	var out []string
	for _, sys := range d.cfg.Systems {
		if telemetryMode(sys) && !containsInt(d.cfg.TelemetrySizes, w.size) {
			continue
		}
		out = append(out, sys)
	}
	return out
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (d *driver) countRuns() int {
	n := 0
	for _, w := range d.workloads() {
		n += len(d.systemsFor(w))
	}
	if d.cfg.has("gate") {
		n += len(d.cfg.StreamInflight)
		n += len(d.cfg.HugeCompress) * (len(d.cfg.HugeSizes) + len(d.cfg.HugeReader))
	}
	n *= d.cfg.Rounds
	if d.cfg.has("gate") {
		if d.cfg.SlowSize > 0 {
			n++
		}
		if d.cfg.Pause > 0 {
			n++
		}
	}
	return n
}

// runRound runs every workload once on every system, in an order that
// rotates from round to round.
func (d *driver) runRound(ctx context.Context, round int) {
	for _, w := range d.workloads() {
		systems := d.systemsFor(w)
		k := (round - 1) % len(systems)
		for _, sys := range append(systems[k:], systems[:k]...) {
			if ctx.Err() != nil {
				return
			}
			res, err := d.runClient(ctx, d.stacks[sys], []string{
				"-inflight", strconv.Itoa(w.inflight), "-size", strconv.Itoa(w.size),
				"-warmup", d.cfg.Warmup.String(), "-duration", d.cfg.Duration.String(),
			}, d.cfg.Duration+d.cfg.Warmup)
			d.rep.addEcho(sys, w.inflight, w.size, round, res, err)
			d.progress(round, fmt.Sprintf("%-16s x%-3d %7s", sys, w.inflight, sizeName(w.size)), res, err)
		}
	}
	if s := d.stacks["gate"]; s != nil {
		for _, n := range d.cfg.StreamInflight {
			if ctx.Err() != nil {
				return
			}
			res, err := d.runClient(ctx, s, []string{"-mode", "stream", "-inflight", strconv.Itoa(n), "-size", strconv.Itoa(d.cfg.StreamSize),
				"-warmup", d.cfg.Warmup.String(), "-duration", d.cfg.StreamDuration.String()}, d.cfg.StreamDuration+d.cfg.Warmup)
			d.rep.addStream(n, d.cfg.StreamSize, round, res, err)
			d.progress(round, fmt.Sprintf("stream x%d %dB", n, d.cfg.StreamSize), res, err)
		}
		var kinds []hugeKind
		for _, size := range d.cfg.HugeSizes {
			for _, comp := range d.cfg.HugeCompress {
				kinds = append(kinds, hugeKind{comp: comp, size: size})
			}
		}
		for _, size := range d.cfg.HugeReader {
			for _, comp := range d.cfg.HugeCompress {
				kinds = append(kinds, hugeKind{comp: comp, size: size, reader: true})
			}
		}
		if round == 1 && d.cfg.SlowSize > 0 {
			kinds = append(kinds, hugeKind{comp: "zstd", size: d.cfg.SlowSize, reader: true, rate: d.cfg.SlowRate})
		}
		for _, k := range kinds {
			if ctx.Err() != nil {
				return
			}
			h, err := d.runHuge(ctx, k)
			d.rep.addHuge(k, round, h, err)
			d.progress(round, "huge "+k.String(), h.Client, err)
		}
		if round == 1 && d.cfg.Pause > 0 && ctx.Err() == nil {
			h, err := d.runPause(ctx, d.cfg.Pause)
			d.rep.addPause(d.cfg.Pause, h, err)
			d.progress(round, fmt.Sprintf("stream paused %s", d.cfg.Pause), h.Client, err)
		}
	}
}

// hugeKind is one HugeData workload.
type hugeKind struct {
	comp   string
	size   int
	reader bool    // Client.CallReader instead of Client.Call
	rate   float64 // reader bytes/s, 0 = unlimited
}

func (k hugeKind) String() string {
	s := k.comp + " " + sizeName(k.size)
	if k.reader {
		s += " reader"
	}
	if k.rate > 0 {
		s += fmt.Sprintf(" @%.0f MB/s", k.rate/1e6)
	}
	return s
}

// runClient runs one client process against s and returns its result.
func (d *driver) runClient(ctx context.Context, s *stack, args []string, d0 time.Duration) (clientResult, error) {
	if s == nil {
		return clientResult{}, errors.New("system not started")
	}
	if err := s.down(); err != nil {
		return clientResult{}, err
	}
	all := append([]string{s.clientRole, "-connect", s.connect}, append(append([]string(nil), s.clientArgs...), args...)...)
	c, err := d.p.start(s.clientRole, s.env, d.self, all...)
	if err != nil {
		return clientResult{}, err
	}
	defer c.stop(2 * time.Second)
	stopScrape := d.scrape(s.scrape)
	defer stopScrape()
	// Start-up probes may take a while; the measured part is bounded by
	// its flags, huge calls by their own 120 s timeout.
	res, err := c.result(ctx, d0+150*time.Second)
	if err == nil {
		err = s.down()
	}
	return res, err
}

// scrape GETs every URL once a second until the returned func is called,
// as a Prometheus server with a 1 s interval would.
func (d *driver) scrape(urls []string) func() {
	if len(urls) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 2 * time.Second}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, u := range urls {
					if r, err := hc.Get(u); err == nil {
						drain(r.Body)
						r.Body.Close()
					}
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// hugeRun is one HugeData run: the client's result and the peak RSS of
// its broker and worker, which are started for this run only.
type hugeRun struct {
	Client                 clientResult
	BrokerIdleKB, BrokerKB int64
	WorkerIdleKB, WorkerKB int64
}

func (d *driver) runHuge(ctx context.Context, k hugeKind) (hugeRun, error) {
	args := []string{"-mode", "huge", "-size", strconv.Itoa(k.size), "-calls", strconv.Itoa(d.cfg.HugeCalls), "-duration", "1ns"}
	if k.reader {
		args = append(args, "-reader", "-rate", strconv.FormatFloat(k.rate, 'f', -1, 64))
	}
	return d.runFresh(ctx, "huge-"+k.comp, k.comp, k.size, args)
}

// runPause runs the endless stream whose reader pauses, on a broker and
// worker of its own.
func (d *driver) runPause(ctx context.Context, pause time.Duration) (hugeRun, error) {
	return d.runFresh(ctx, "pause", "gzip", 0, []string{"-mode", "pause", "-pause", pause.String(), "-duration", "3s"})
}

// runFresh starts a broker and a demo worker for one gate-client run and
// reads their idle and peak RSS around it. size (the HugeData reply, 0 for
// none) raises the client's HugeDataMaxSize when it needs more than the
// default.
func (d *driver) runFresh(ctx context.Context, name, comp string, size int, args []string) (hugeRun, error) {
	var h hugeRun
	env := append(baseEnv(), "GATE_HUGE_DATA_COMPRESS="+comp)
	if size > 200<<20 {
		env = append(env, "GATE_HUGE_DATA_MAX_SIZE="+strconv.Itoa(size+(1<<20)))
	}
	s, err := d.startGate(ctx, name, env, false, nil)
	if err != nil {
		return h, err
	}
	defer func() {
		for _, c := range s.children {
			c.stop(3 * time.Second)
		}
	}()
	if err := d.startDemoWorker(s, env, false); err != nil {
		return h, err
	}
	s.clientRole = "gate-client"
	t := time.NewTimer(time.Second) // let both settle before reading their idle RSS
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return h, ctx.Err()
	}
	h.BrokerIdleKB, h.WorkerIdleKB = procKB(s.broker.pid(), "VmRSS"), procKB(s.worker.pid(), "VmRSS")
	var budget time.Duration
	for i, a := range args {
		switch {
		case a == "-rate" && i+1 < len(args):
			if r, _ := strconv.ParseFloat(args[i+1], 64); r > 0 {
				budget = time.Duration(float64(size) / r * float64(time.Second))
			}
		case a == "-pause" && i+1 < len(args):
			p, _ := time.ParseDuration(args[i+1])
			budget = p + 10*time.Second
		}
	}
	h.Client, err = d.runClient(ctx, s.stack, args, budget)
	h.BrokerKB, h.WorkerKB = procKB(s.broker.pid(), "VmHWM"), procKB(s.worker.pid(), "VmHWM")
	return h, err
}

// sinkStats asks the OTLP sink how much it received.
func (d *driver) sinkStats() *sinkStats {
	if d.sink == "" {
		return nil
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	r, err := hc.Get(d.sink + "/stats")
	if err != nil {
		return nil
	}
	defer r.Body.Close()
	var st sinkStats
	if _, err := fmt.Fscan(r.Body, &st.Requests, &st.Bytes); err != nil {
		return nil
	}
	return &st
}

func (d *driver) progress(round int, what string, res clientResult, err error) {
	d.nrun++
	status := ""
	switch {
	case err != nil:
		status = "FAILED: " + err.Error()
	case res.Items > 0:
		status = fmt.Sprintf("%s items/s", si(float64(res.Items)/res.ElapsedS))
	case res.Bytes > 0:
		status = fmt.Sprintf("%.1f mb/s", float64(res.Bytes)/res.ElapsedS/1e6)
	default:
		status = fmt.Sprintf("%s calls/s  p50 %s  p99 %s", si(float64(res.Calls)/res.ElapsedS), us(res.P50us), us(res.P99us))
	}
	if res.Errors > 0 {
		status += fmt.Sprintf("  (%d errors: %s)", res.Errors, res.LastError)
	}
	fmt.Fprintf(os.Stderr, "[round %d %3d/%d] %s  %s\n", round, d.nrun, d.total, what, status)
}
