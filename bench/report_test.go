package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"strings"
	"testing"
	"time"
)

// testReport is a report of one round with fixed numbers.
func testReport() *report {
	cfg := &config{Rounds: 2, Duration: time.Second, Inflight: []int{64}, Sizes: []int{64}}
	r := &report{Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Command: "bin/compare -rounds 2",
		Machine: machine{NProc: 2, CPU: "Test CPU", Kernel: "6.1.0", Go: "go1.26", Libzmq: "4.3.4", NATS: "2.15.3"}, Config: cfg}
	for round := 1; round <= 2; round++ {
		r.addEcho("nats", 64, 64, round, clientResult{Calls: 40000, ElapsedS: 1, P50us: 1500, P99us: 4000}, nil)
		r.addEcho("zmq_proxy", 64, 64, round, clientResult{Calls: 50000, ElapsedS: 1, P50us: 1200, P99us: 3000}, nil)
		r.addEcho("gate", 64, 64, round, clientResult{Calls: int64(18000 + 2000*round), ElapsedS: 1, P50us: 3200, P99us: 9000}, nil)
		r.addEcho("gate-metrics", 64, 64, round, clientResult{Calls: 19000, ElapsedS: 1, P50us: 3300, P99us: 9500}, nil)
		r.addEcho("gate-trace10", 64, 64, round, clientResult{Calls: 17000, ElapsedS: 1, P50us: 3400, P99us: 9900}, nil)
	}
	r.addEcho("gate", 64, 1<<20, 1, clientResult{Calls: 0, Errors: 29, ElapsedS: 1, LastError: "client too slow"}, nil)
	r.addEcho("nats", 64, 1<<20, 1, clientResult{Calls: 60, ElapsedS: 1, P50us: 800000, P99us: 1.6e6}, nil)
	r.addEcho("gate-broker-raw", 64, 64, 1, clientResult{}, errors.New("raw-client: exit status 1"))
	r.addStream(1, 100, 1, clientResult{Items: 150000, Bytes: 15e6, ElapsedS: 2}, nil)
	r.addHuge(hugeKind{comp: "zstd", size: 100e6, reader: true}, 1, hugeRun{Client: clientResult{Calls: 1, Bytes: 100e6, ElapsedS: 0.25, RSSIdleKB: 10 << 10, RSSPeakKB: 50 << 10},
		BrokerIdleKB: 8 << 10, BrokerKB: 20 << 10, WorkerIdleKB: 9 << 10, WorkerKB: 90 << 10}, nil)
	r.addHuge(hugeKind{comp: "gzip", size: 100e6}, 1, hugeRun{Client: clientResult{Errors: 1, LastError: "TypeError | size limit"}}, nil)
	r.addPause(60*time.Second, hugeRun{Client: clientResult{Items: 5000, RSSIdleKB: 10 << 10, RSSPeakKB: 12 << 10},
		BrokerIdleKB: 8 << 10, BrokerKB: 9 << 10, WorkerIdleKB: 9 << 10, WorkerKB: 10 << 10}, nil)
	r.Sink = &sinkStats{Requests: 3, Bytes: 2e6}
	r.finish(90 * time.Second)
	return r
}

func TestFinish(t *testing.T) {
	r := testReport()
	g := r.find("gate", 64, 64)
	if g == nil {
		t.Fatal("no gate cell")
	}
	if g.Rate != 21000 || g.RateMin != 20000 || g.RateMax != 22000 {
		t.Errorf("gate median/min/max = %v/%v/%v, want 21000/20000/22000", g.Rate, g.RateMin, g.RateMax)
	}
	if want := 21000.0 / 40000; g.VsNATS != want {
		t.Errorf("gate VsNATS = %v, want %v", g.VsNATS, want)
	}
	if want := 21000.0 / 50000; g.VsZMQ != want {
		t.Errorf("gate VsZMQ = %v, want %v", g.VsZMQ, want)
	}
	if raw := r.find("gate-broker-raw", 64, 64); raw.Failures != 1 || raw.Rate != 0 {
		t.Errorf("raw failures/rate = %d/%v, want 1/0", raw.Failures, raw.Rate)
	}
	if big := r.find("gate", 64, 1<<20); big.Failures != 1 || big.Errors != 29 {
		t.Errorf("1 MiB failures/errors = %d/%d, want 1/29", big.Failures, big.Errors)
	}
	z := r.Huge[0]
	if z.MBPerS != 400 || z.ClientMB != 40 || z.BrokerMB != 12 || z.WorkerMB != 81 {
		t.Errorf("zstd huge = %+v, want 400 MB/s, +40/+12/+81 MiB", z)
	}
	met := map[string]bool{}
	for _, tg := range r.Targets {
		if tg.Met != nil {
			met[tg.What] = *tg.Met
		}
	}
	for what, want := range map[string]bool{
		"full stack ÷ NATS, calls/s, 64 B, 64 in flight":                                             false,
		"metrics + logs ÷ off, calls/s, 64 B, 64 in flight":                                          false, // 19000/21000
		"HugeData 100 MB reply, zstd, streamed reader, end to end":                                   true,
		"HugeData 100 MB zstd streamed reader: largest peak RSS above idle (client, broker, worker)": false, // worker +81 MiB
		"HugeData 100 MB reply, gzip, Client.Call, end to end":                                       false, // failed
		"endless stream, reader stops for 1m0s then resumes: items lost or errors":                   true,
	} {
		got, ok := met[what]
		if !ok || got != want {
			t.Errorf("target %q met = %v (present %v), want %v", what, got, ok, want)
		}
	}
}

func TestTables(t *testing.T) {
	r := testReport()
	text := r.text()
	for _, want := range []string{
		"| in flight | size | system | calls/s | range | p50 | p99 | ÷ NATS | ÷ zmq_proxy |",
		"| 64 | 64 B | gate | 21.0k | 20.0k–22.0k | 3.20 ms | 9.00 ms | 0.53× | 0.42× |",
		"| 64 | 64 B | nats | 40.0k | 40.0k–40.0k | 1.50 ms | 4.00 ms | 1.00× | 0.80× |",
		"| 64 | 64 B | gate-broker-raw | failed (runs failed: 1 of 1; errors: 0; last: raw-client: exit status 1) |",
		"| 64 | 1 MiB | gate | failed (runs failed: 1 of 1; errors: 29; last: client too slow) |",
		"| 64 | 64 B | gate-trace10 | 17.0k | 17.0k–17.0k | 3.40 ms | 9.90 ms | 0.42× | 0.34× |\n| 64 | 1 MiB | nats", // sorted by workload, then system
		"+ tracing 10% ÷ off, calls/s, 64 B, 64 in flight | ≥ 0.90 | 0.81× | not met |",
		"| 1 | 100 B | 75.0k | 75.0k–75.0k | 7.5 |",
		"| zstd | 100 MB | streamed reader | 400.0 | 400.0–400.0 | 40 | 12 | 81 |",
		"TypeError / size limit", // a '|' in an error must not break the table
		"| 60 s | 5000 | ok | 2 | 1 | 1 |",
		"OTLP sink received 3 export requests",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text() lacks %q:\n%s", want, text)
		}
	}
	// Every table line has the same number of cells as its header.
	var cols int
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(line, "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("table line with %d bars, header has %d: %s", n, cols, line)
		}
	}
	md := r.markdown("/repo/BENCHMARKS.md", "/repo/docs/compare.png")
	for _, want := range []string{"# Benchmarks", "`nproc` 2, Test CPU, kernel 6.1.0", "`bin/compare -rounds 2`",
		"![calls/s of every workload, telemetry modes and targets](docs/compare.png)", "## Method", "## Targets"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(testReport())
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Echo []struct {
			System string  `json:"system"`
			Rate   float64 `json:"median_per_s"`
			VsNATS float64 `json:"vs_nats"`
		} `json:"echo"`
		Machine struct {
			NProc int `json:"nproc"`
		} `json:"machine"`
		Targets []target `json:"targets"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Machine.NProc != 2 || len(back.Echo) != 8 || len(back.Targets) == 0 {
		t.Fatalf("JSON round trip: %+v", back)
	}
	for _, c := range back.Echo {
		if c.System == "gate" && c.Rate == 21000 && c.VsNATS != 0.525 {
			t.Errorf("gate vs_nats = %v, want 0.525", c.VsNATS)
		}
	}
}

func TestChart(t *testing.T) {
	var buf bytes.Buffer
	if err := writeChart(&buf, testReport()); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
		t.Errorf("chart is %v, want %dx%d", b, chartW, chartH)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{sizeName(64), "64 B"}, {sizeName(1024), "1 KiB"}, {sizeName(64 << 10), "64 KiB"}, {sizeName(1 << 20), "1 MiB"},
		{sizeName(100e6), "100 MB"}, {sizeName(1000), "1000 B"},
		{si(950), "950"}, {si(1234), "1.23k"}, {si(42000), "42.0k"}, {si(1.5e6), "1.50M"},
		{us(850), "850 µs"}, {us(3200), "3.20 ms"}, {us(12500), "12.5 ms"}, {us(2e6), "2.00 s"}, {us(0), "–"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Now()
	w := &window{warmEnd: t0.Add(100 * time.Millisecond), need: 2, d: time.Second, giveUp: t0.Add(time.Minute)}
	steps := []struct {
		at       time.Duration
		in, over bool
	}{
		{50 * time.Millisecond, false, false},  // warm-up
		{150 * time.Millisecond, false, false}, // opens the window (2nd completion)... at 150ms
		{500 * time.Millisecond, true, false},  // inside
		{1149 * time.Millisecond, true, false}, // last ns inside
		{1150 * time.Millisecond, false, true}, // closed
	}
	for i, s := range steps {
		in, over := w.complete(t0.Add(s.at))
		if i == 1 {
			in = false // the opening completion counts; checked below
		}
		if in != s.in || over != s.over {
			t.Errorf("step %d at %v: in, over = %v, %v; want %v, %v", i, s.at, in, over, s.in, s.over)
		}
	}
	if got := time.Unix(0, w.from.Load()).Sub(t0); got != 150*time.Millisecond {
		t.Errorf("window opened at %v, want 150ms", got)
	}
	never := &window{warmEnd: t0, need: 10, d: time.Second, giveUp: t0.Add(time.Second)}
	if _, over := never.complete(t0.Add(2 * time.Second)); !over {
		t.Error("a window that cannot open must end the run after giveUp")
	}
	if res := summarize(never); res.Errors != 1 || !strings.Contains(res.LastError, "never opened") {
		t.Errorf("summarize(unopened) = %+v, want one error", res)
	}
}

func TestQuantile(t *testing.T) {
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if q := quantile(v, .5); q != 5 {
		t.Errorf("p50 = %d, want 5", q)
	}
	if q := quantile(v, .99); q != 10 {
		t.Errorf("p99 = %d, want 10", q)
	}
	if q := quantile(nil, .5); q != 0 {
		t.Errorf("p50 of nothing = %d, want 0", q)
	}
}

func TestBusy(t *testing.T) {
	for _, c := range []struct {
		start, end string
		want       bool
	}{
		{"0.20 0.30 0.40", "0.50 0.30 0.40", false},
		{"7.62 8.15 7.70", "0.50 0.30 0.40", true},
		{"0.20 0.30 0.40", "1.50 0.30 0.40", true},
		{"", "", false},
	} {
		if got := busy(machine{NProc: 2, LoadAvg: c.start, LoadEnd: c.end}); got != c.want {
			t.Errorf("busy(%q, %q) = %v, want %v", c.start, c.end, got, c.want)
		}
	}
}
