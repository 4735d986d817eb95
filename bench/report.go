package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	zmq "github.com/pebbe/zmq4"
)

// report is the result of a run; -json prints it as is.
type report struct {
	Started time.Time   `json:"started"`
	TookS   float64     `json:"took_s"`
	Command string      `json:"command"`
	ViaMake bool        `json:"via_make"`
	Machine machine     `json:"machine"`
	Config  *config     `json:"config"`
	Echo    []*cell     `json:"echo"`
	Stream  []*cell     `json:"stream,omitempty"`
	Huge    []*huge     `json:"huge,omitempty"`
	Pause   []*pauseRow `json:"pause,omitempty"`
	Sink    *sinkStats  `json:"otlp_sink,omitempty"`
	Targets []target    `json:"targets,omitempty"`
}

type machine struct {
	NProc    int    `json:"nproc"`
	CPU      string `json:"cpu"`
	Kernel   string `json:"kernel"`
	MemTotal string `json:"mem_total"`
	Go       string `json:"go"`
	Libzmq   string `json:"libzmq"`
	NATS     string `json:"nats_server"`
	Busy     bool   `json:"busy"` // load average above nproc/2 at the start or end
	LoadAvg  string `json:"loadavg_at_start"`
	LoadEnd  string `json:"loadavg_at_end,omitempty"`
}

// sample is one run of one cell.
type sample struct {
	Round     int     `json:"round"`
	CallsPerS float64 `json:"calls_per_s,omitempty"`
	ItemsPerS float64 `json:"items_per_s,omitempty"`
	MBPerS    float64 `json:"mb_per_s,omitempty"`
	P50us     float64 `json:"p50_us,omitempty"`
	P99us     float64 `json:"p99_us,omitempty"`
	Calls     int64   `json:"calls"`
	Errors    int64   `json:"errors,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// cell is one system at one workload over all rounds: the median of the
// rounds that completed, their range, and the ratios to NATS and
// zmq_proxy at the same workload.
type cell struct {
	System   string   `json:"system"`
	Inflight int      `json:"inflight"`
	Size     int      `json:"size"`
	Samples  []sample `json:"samples"`

	Rate     float64 `json:"median_per_s"` // calls/s (echo) or items/s (stream)
	RateMin  float64 `json:"min_per_s"`
	RateMax  float64 `json:"max_per_s"`
	MBPerS   float64 `json:"median_mb_per_s,omitempty"`
	P50us    float64 `json:"median_p50_us,omitempty"`
	P99us    float64 `json:"median_p99_us,omitempty"`
	VsNATS   float64 `json:"vs_nats,omitempty"`
	VsZMQ    float64 `json:"vs_zmq_proxy,omitempty"`
	Failures int     `json:"failed_runs,omitempty"`
	Errors   int64   `json:"errors,omitempty"`
	LastErr  string  `json:"last_error,omitempty"`
}

// huge is the HugeData row of one compressor.
type huge struct {
	Compress string `json:"compress"`
	Size     int    `json:"size"`
	// Reader: the client read the reply with Client.CallReader (streamed),
	// at most RateMBs MB/s when RateMBs > 0; else Client.Call.
	Reader  bool         `json:"reader,omitempty"`
	RateMBs float64      `json:"reader_rate_mb_per_s,omitempty"`
	Runs    []hugeSample `json:"runs"`
	MBPerS  float64      `json:"median_mb_per_s"`
	MBMin   float64      `json:"min_mb_per_s"`
	MBMax   float64      `json:"max_mb_per_s"`
	// Peak RSS above idle, MiB, the largest over the runs.
	ClientMB float64 `json:"client_rss_above_idle_mib"`
	BrokerMB float64 `json:"broker_rss_above_idle_mib"`
	WorkerMB float64 `json:"worker_rss_above_idle_mib"`
	Failures int     `json:"failed_runs,omitempty"`
	LastErr  string  `json:"last_error,omitempty"`
}

type hugeSample struct {
	Round  int     `json:"round"`
	MBPerS float64 `json:"mb_per_s,omitempty"`
	Run    hugeRun `json:"rss_kb_and_client"`
	Error  string  `json:"error,omitempty"`
}

type sinkStats struct {
	Requests int64 `json:"export_requests"`
	Bytes    int64 `json:"bytes"`
}

// target is one of the project's speed and memory goals with the measured value.
type target struct {
	What string  `json:"what"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  *bool   `json:"met,omitempty"`
}

func newReport(cfg *config, args []string) *report {
	return &report{Started: time.Now().UTC(), Command: shellJoin(args), ViaMake: os.Getenv("MAKELEVEL") != "", Machine: readMachine(), Config: cfg}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func readMachine() machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), NATS: server.VERSION}
	major, minor, patch := zmq.Version()
	m.Libzmq = fmt.Sprintf("%d.%d.%d", major, minor, patch)
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if kb := meminfoKB("MemTotal"); kb > 0 {
		m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	m.LoadAvg = loadAvg()
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

func meminfoKB(field string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			var n int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &n)
			return n
		}
	}
	return 0
}

func (r *report) cellFor(list *[]*cell, sys string, inflight, size int) *cell {
	for _, c := range *list {
		if c.System == sys && c.Inflight == inflight && c.Size == size {
			return c
		}
	}
	c := &cell{System: sys, Inflight: inflight, Size: size}
	*list = append(*list, c)
	return c
}

func (r *report) addEcho(sys string, inflight, size, round int, res clientResult, err error) {
	c := r.cellFor(&r.Echo, sys, inflight, size)
	s := sample{Round: round, Calls: res.Calls, Errors: res.Errors, P50us: res.P50us, P99us: res.P99us}
	if res.ElapsedS > 0 {
		s.CallsPerS = float64(res.Calls) / res.ElapsedS
		s.MBPerS = s.CallsPerS * float64(size) / 1e6
	}
	if err != nil {
		s.Error = err.Error()
	} else if res.Errors > 0 {
		s.Error = res.LastError
	}
	c.Samples = append(c.Samples, s)
}

func (r *report) addStream(inflight, size, round int, res clientResult, err error) {
	c := r.cellFor(&r.Stream, "gate", inflight, size)
	s := sample{Round: round, Calls: res.Items, Errors: res.Errors}
	if res.ElapsedS > 0 {
		s.ItemsPerS = float64(res.Items) / res.ElapsedS
		s.MBPerS = float64(res.Bytes) / res.ElapsedS / 1e6
	}
	if err != nil {
		s.Error = err.Error()
	} else if res.Errors > 0 {
		s.Error = res.LastError
	}
	c.Samples = append(c.Samples, s)
}

func (r *report) addHuge(k hugeKind, round int, h hugeRun, err error) {
	var row *huge
	rate := k.rate / 1e6
	for _, x := range r.Huge {
		if x.Compress == k.comp && x.Size == k.size && x.Reader == k.reader && x.RateMBs == rate {
			row = x
		}
	}
	if row == nil {
		row = &huge{Compress: k.comp, Size: k.size, Reader: k.reader, RateMBs: rate}
		r.Huge = append(r.Huge, row)
	}
	s := hugeSample{Round: round, Run: h}
	if h.Client.ElapsedS > 0 && h.Client.Bytes > 0 {
		s.MBPerS = float64(h.Client.Bytes) / h.Client.ElapsedS / 1e6
	}
	switch {
	case err != nil:
		s.Error = err.Error()
	case h.Client.Errors > 0:
		s.Error = h.Client.LastError
	}
	row.Runs = append(row.Runs, s)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// finish computes the medians, ranges, ratios and targets, and sorts the
// cells by workload, then system.
func (r *report) finish(took time.Duration) {
	r.TookS = took.Seconds()
	r.Machine.LoadEnd = loadAvg()
	r.Machine.Busy = busy(r.Machine)
	order := func(a, b *cell) int {
		if a.Inflight != b.Inflight {
			return a.Inflight - b.Inflight
		}
		if a.Size != b.Size {
			return a.Size - b.Size
		}
		return slices.Index(allSystems, a.System) - slices.Index(allSystems, b.System)
	}
	slices.SortStableFunc(r.Echo, order)
	slices.SortStableFunc(r.Stream, order)
	for _, list := range [][]*cell{r.Echo, r.Stream} {
		for _, c := range list {
			var rate, mb, p50, p99 []float64
			for _, s := range c.Samples {
				c.Errors += s.Errors
				if s.Error != "" {
					c.LastErr = s.Error
				}
				if s.Error != "" && s.Calls == 0 {
					c.Failures++
					continue
				}
				v := s.CallsPerS
				if s.ItemsPerS > 0 {
					v = s.ItemsPerS
				}
				rate, mb, p50, p99 = append(rate, v), append(mb, s.MBPerS), append(p50, s.P50us), append(p99, s.P99us)
			}
			if len(rate) > 0 {
				c.Rate, c.RateMin, c.RateMax = median(rate), slices.Min(rate), slices.Max(rate)
				c.MBPerS, c.P50us, c.P99us = median(mb), median(p50), median(p99)
			}
		}
	}
	for _, c := range r.Echo {
		if n := r.find("nats", c.Inflight, c.Size); n != nil && n.Rate > 0 {
			c.VsNATS = c.Rate / n.Rate
		}
		if z := r.find("zmq_proxy", c.Inflight, c.Size); z != nil && z.Rate > 0 {
			c.VsZMQ = c.Rate / z.Rate
		}
	}
	for _, h := range r.Huge {
		var mb []float64
		for _, s := range h.Runs {
			if s.Error != "" {
				h.Failures++
				h.LastErr = s.Error
			}
			if s.MBPerS > 0 && s.Error == "" {
				mb = append(mb, s.MBPerS)
			}
			h.ClientMB = max(h.ClientMB, float64(s.Run.Client.RSSPeakKB-s.Run.Client.RSSIdleKB)/1024)
			h.BrokerMB = max(h.BrokerMB, float64(s.Run.BrokerKB-s.Run.BrokerIdleKB)/1024)
			h.WorkerMB = max(h.WorkerMB, float64(s.Run.WorkerKB-s.Run.WorkerIdleKB)/1024)
		}
		if len(mb) > 0 {
			h.MBPerS, h.MBMin, h.MBMax = median(mb), slices.Min(mb), slices.Max(mb)
		}
	}
	r.Targets = r.targets()
}

func (r *report) find(sys string, inflight, size int) *cell {
	for _, c := range r.Echo {
		if c.System == sys && c.Inflight == inflight && c.Size == size {
			return c
		}
	}
	return nil
}

// targets lists the project's goals that this run measures.
func (r *report) targets() []target {
	var ts []target
	add := func(what, want string, got float64, unit string, ok func(float64) bool) {
		if got == 0 || math.IsNaN(got) || math.IsInf(got, 0) {
			return
		}
		t := target{What: what, Want: want, Got: got, Unit: unit}
		if ok != nil {
			met := ok(got)
			t.Met = &met
		}
		ts = append(ts, t)
	}
	ratio := func(a, b *cell, f func(*cell) float64) float64 {
		if a == nil || b == nil || f(b) == 0 {
			return 0
		}
		return f(a) / f(b)
	}
	rate := func(c *cell) float64 { return c.Rate }
	p50 := func(c *cell) float64 { return c.P50us }
	ge := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	le := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	add("full stack ÷ NATS, calls/s, 64 B, 64 in flight", "≥ 1.0", ratio(r.find("gate", 64, 64), r.find("nats", 64, 64), rate), "×", ge(1))
	if g := r.find("gate", 64, 64); g != nil {
		add("full stack ÷ Python gaterpc 0.2.12 (1.8k calls/s, measured once on this machine, not re-measured), 64 B, 64 in flight", "≥ 20", g.Rate/1800, "×", ge(20))
	}
	add("gate-broker with raw peers ÷ zmq_proxy, calls/s, 64 B, 64 in flight", "≥ 0.9", ratio(r.find("gate-broker-raw", 64, 64), r.find("zmq_proxy", 64, 64), rate), "×", ge(0.9))
	add("full stack p50 ÷ zmq_proxy p50, 64 B, 1 in flight", "≤ 1.1", ratio(r.find("gate", 1, 64), r.find("zmq_proxy", 1, 64), p50), "×", le(1.1))
	add("gate-broker with raw peers p50 ÷ zmq_proxy p50, 64 B, 1 in flight", "≤ 1.1", ratio(r.find("gate-broker-raw", 1, 64), r.find("zmq_proxy", 1, 64), p50), "×", le(1.1))
	add("metrics + logs ÷ off, calls/s, 64 B, 64 in flight", "≥ 0.95", ratio(r.find("gate-metrics", 64, 64), r.find("gate", 64, 64), rate), "×", ge(0.95))
	add("+ tracing 10% ÷ off, calls/s, 64 B, 64 in flight", "≥ 0.90", ratio(r.find("gate-trace10", 64, 64), r.find("gate", 64, 64), rate), "×", ge(0.90))
	add("+ tracing 100% ÷ off, calls/s, 64 B, 64 in flight", "reported", ratio(r.find("gate-trace100", 64, 64), r.find("gate", 64, 64), rate), "×", nil)
	for _, c := range r.Stream {
		add(fmt.Sprintf("stream items/s, %d B items, %d stream(s)", c.Size, c.Inflight), "≥ 200k", c.Rate, "items/s", ge(200e3))
	}
	for _, h := range r.Huge {
		what := fmt.Sprintf("HugeData %s reply, %s, %s, end to end", sizeName(h.Size), h.Compress, h.how())
		switch {
		case h.MBPerS == 0:
			ts = append(ts, target{What: what, Want: "completes", Unit: "failed", Met: new(bool)})
			continue
		case h.RateMBs > 0:
			add(what, "completes", h.MBPerS, "MB/s", func(float64) bool { return h.Failures == 0 })
		case h.Reader && h.Compress == "zstd" && h.Size >= 100e6:
			add(what, "≥ 300", h.MBPerS, "MB/s", ge(300))
		default:
			add(what, "reported", h.MBPerS, "MB/s", nil)
		}
		if h.Reader {
			peak := max(h.ClientMB, h.BrokerMB, h.WorkerMB)
			add(fmt.Sprintf("HugeData %s %s %s: largest peak RSS above idle (client, broker, worker)", sizeName(h.Size), h.Compress, h.how()), "≤ 64", peak, "MiB", le(64))
		} else {
			peak := max(h.BrokerMB, h.WorkerMB)
			add(fmt.Sprintf("HugeData %s %s %s: largest peak RSS above idle (broker, worker; the client holds the value)", sizeName(h.Size), h.Compress, h.how()), "≤ 64", peak, "MiB", le(64))
		}
	}
	for _, p := range r.Pause {
		what := fmt.Sprintf("endless stream, reader stops for %s then resumes: items lost or errors", time.Duration(p.PauseS*float64(time.Second)))
		ts = append(ts, target{What: what, Want: "0", Got: float64(p.Errors), Unit: "", Met: ptr(p.Errors == 0 && p.Items > 0)})
		add("the same: largest peak RSS above idle (client, broker, worker)", "≤ 64", max(p.ClientMB, p.BrokerMB, p.WorkerMB), "MiB", le(64))
	}
	return ts
}

// how says how the client read a HugeData reply.
func (h *huge) how() string {
	switch {
	case h.RateMBs > 0:
		return fmt.Sprintf("streamed reader at %.0f MB/s", h.RateMBs)
	case h.Reader:
		return "streamed reader"
	}
	return "Client.Call"
}

func ptr[T any](v T) *T { return &v }

// pauseRow is the endless-stream run whose reader pauses.
type pauseRow struct {
	PauseS   float64 `json:"pause_s"`
	Items    int64   `json:"items"`
	Errors   int64   `json:"errors"`
	LastErr  string  `json:"last_error,omitempty"`
	ClientMB float64 `json:"client_rss_above_idle_mib"`
	BrokerMB float64 `json:"broker_rss_above_idle_mib"`
	WorkerMB float64 `json:"worker_rss_above_idle_mib"`
}

func (r *report) addPause(pause time.Duration, h hugeRun, err error) {
	p := &pauseRow{PauseS: pause.Seconds(), Items: h.Client.Items, Errors: h.Client.Errors, LastErr: h.Client.LastError,
		ClientMB: float64(h.Client.RSSPeakKB-h.Client.RSSIdleKB) / 1024,
		BrokerMB: float64(h.BrokerKB-h.BrokerIdleKB) / 1024,
		WorkerMB: float64(h.WorkerKB-h.WorkerIdleKB) / 1024}
	if err != nil {
		p.Errors++
		p.LastErr = err.Error()
	}
	r.Pause = append(r.Pause, p)
}

func (r *report) pauseTable() string {
	if len(r.Pause) == 0 {
		return ""
	}
	var rows [][]string
	for _, p := range r.Pause {
		status := "ok"
		if p.Errors > 0 {
			status = "failed: " + clip(p.LastErr, 240)
		}
		rows = append(rows, []string{fmt.Sprintf("%.0f s", p.PauseS), strconvI(int(p.Items)), status,
			fmt.Sprintf("%.0f", p.ClientMB), fmt.Sprintf("%.0f", p.BrokerMB), fmt.Sprintf("%.0f", p.WorkerMB)})
	}
	return table([]string{"pause", "items read", "result", "client RSS +MiB", "broker RSS +MiB", "worker RSS +MiB"}, rows)
}

// sizeName is a size with binary units: 64 B, 1 KiB, 64 KiB, 1 MiB.
func sizeName(n int) string {
	switch {
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%d MB", n/1e6)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// si formats a rate: 950, 12.3k, 1.25M.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// us formats microseconds with a lowercase unit: 850 µs, 3.2 ms, 1.05 s.
func us(v float64) string {
	switch {
	case v <= 0:
		return "–"
	case v >= 1e6:
		return fmt.Sprintf("%.2f s", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f ms", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2f ms", v/1e3)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func ratioText(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", v)
}

// table renders rows as a Markdown table (which reads as text too).
func table(head []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// echoTable is the main table: one row per system and workload.
func (r *report) echoTable() string {
	var rows [][]string
	for _, c := range r.Echo {
		rate := si(c.Rate)
		if c.Rate == 0 {
			rate = "failed"
		}
		rate += failText(c)
		rng := ""
		if c.Rate > 0 {
			rng = si(c.RateMin) + "–" + si(c.RateMax)
		}
		rows = append(rows, []string{strconvI(c.Inflight), sizeName(c.Size), c.System, rate, rng, us(c.P50us), us(c.P99us),
			ratioText(c.VsNATS), ratioText(c.VsZMQ)})
	}
	return table([]string{"in flight", "size", "system", "calls/s", "range", "p50", "p99", "÷ NATS", "÷ zmq_proxy"}, rows)
}

func strconvI(n int) string { return fmt.Sprint(n) }

// failText notes the failed runs and the errors of a cell, with the last
// error.
func failText(c *cell) string {
	if c.Failures == 0 && c.Errors == 0 {
		return ""
	}
	return fmt.Sprintf(" (runs failed: %d of %d; errors: %d; last: %s)", c.Failures, len(c.Samples), c.Errors, clip(c.LastErr, 90))
}

func (r *report) streamTable() string {
	if len(r.Stream) == 0 {
		return ""
	}
	var rows [][]string
	for _, c := range r.Stream {
		v := si(c.Rate) + failText(c)
		rows = append(rows, []string{strconvI(c.Inflight), sizeName(c.Size), v, si(c.RateMin) + "–" + si(c.RateMax), fmt.Sprintf("%.1f", c.MBPerS)})
	}
	return table([]string{"streams", "item", "items/s", "range", "MB/s of items"}, rows)
}

func (r *report) hugeTable() string {
	if len(r.Huge) == 0 {
		return ""
	}
	var rows [][]string
	for _, h := range r.Huge {
		v := fmt.Sprintf("%.1f", h.MBPerS)
		if h.MBPerS == 0 {
			v = "failed"
		}
		if h.Failures > 0 {
			v += fmt.Sprintf(" (%d of %d runs failed: %s)", h.Failures, len(h.Runs), clip(h.LastErr, 240))
		}
		rng := ""
		if h.MBPerS > 0 {
			rng = fmt.Sprintf("%.1f–%.1f", h.MBMin, h.MBMax)
		}
		rows = append(rows, []string{h.Compress, sizeName(h.Size), h.how(), v, rng,
			fmt.Sprintf("%.0f", h.ClientMB), fmt.Sprintf("%.0f", h.BrokerMB), fmt.Sprintf("%.0f", h.WorkerMB)})
	}
	return table([]string{"compressor", "reply", "read with", "MB/s", "range", "client RSS +MiB", "broker RSS +MiB", "worker RSS +MiB"}, rows)
}

func (r *report) targetTable() string {
	if len(r.Targets) == 0 {
		return ""
	}
	var rows [][]string
	for _, t := range r.Targets {
		got := fmt.Sprintf("%.2f%s", t.Got, t.Unit)
		switch t.Unit {
		case "failed":
			got = "failed"
		case "items/s":
			got = si(t.Got) + " items/s"
		case "MB/s", "MiB":
			got = fmt.Sprintf("%.1f %s", t.Got, t.Unit)
		}
		met := ""
		if t.Met != nil {
			met = map[bool]string{true: "met", false: "not met"}[*t.Met]
		}
		rows = append(rows, []string{t.What, t.Want, got, met})
	}
	return table([]string{"target", "want", "measured", ""}, rows)
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// text is what the driver prints without -json.
func (r *report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncalls/s: median of %d rounds (range: slowest–fastest); p50/p99: median over the rounds\n\n", r.Config.Rounds)
	b.WriteString(r.echoTable())
	if s := r.streamTable(); s != "" {
		b.WriteString("\nstreams (gate full stack, telemetry off)\n\n" + s)
	}
	if s := r.hugeTable(); s != "" {
		b.WriteString("\nHugeData replies (demo.blob, pseudo-random bytes)\n\n" + s)
	}
	if s := r.pauseTable(); s != "" {
		b.WriteString("\nEndless stream (demo.count), reader paused\n\n" + s)
	}
	if s := r.targetTable(); s != "" {
		b.WriteString("\n" + s)
	}
	if r.traced() {
		fmt.Fprintf(&b, "\nOTLP sink received %d export requests, %.1f MB\n", r.Sink.Requests, float64(r.Sink.Bytes)/1e6)
	}
	fmt.Fprintf(&b, "\ntook %s\n", time.Duration(r.TookS*float64(time.Second)).Round(time.Second))
	return b.String()
}

// traced reports whether tracing rows ran and the sink was asked.
func (r *report) traced() bool {
	if r.Sink == nil {
		return false
	}
	for _, c := range r.Echo {
		if strings.HasPrefix(c.System, "gate-trace") {
			return true
		}
	}
	return false
}
