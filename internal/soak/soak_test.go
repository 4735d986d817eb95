package soak_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gaterpc/gate/internal/soak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// long reports whether GATE_SOAK=long asks for the full sizes (the
// make soak / make scale / make churn figures).
func long() bool { return os.Getenv("GATE_SOAK") == "long" }

var (
	buildOnce sync.Once
	binDir    string
	bins      soak.Binaries
	buildErr  error
)

// binaries builds gate-broker, gate-demo-worker and gate-soak once per
// test binary.
func binaries(t *testing.T) soak.Binaries {
	t.Helper()
	buildOnce.Do(func() {
		root, err := soak.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, err = os.MkdirTemp("", "gate-soak-test-"); err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		bins, buildErr = soak.Build(ctx, root, binDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bins
}

// TestSoak drives echo calls and count streams through a gate-broker and
// two gate-demo-worker processes: no call or stream may fail, no process
// may grow without bound, all must exit cleanly. GATE_SOAK=long runs
// 1,000,000 calls and 10,000 streams.
func TestSoak(t *testing.T) {
	b := binaries(t)
	cfg := soak.Config{Calls: 50_000, Streams: 500, Sample: 500 * time.Millisecond, Timeout: 3 * time.Minute}
	if long() {
		cfg = soak.Config{Calls: 1_000_000, Streams: 10_000, Sample: 2 * time.Second, Timeout: 20 * time.Minute}
	}
	rep, err := soak.Run(t.Context(), b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("\n%s", out.String())
	if rep.Calls != int64(cfg.Calls) || rep.Streams != int64(cfg.Streams) {
		t.Errorf("ran %d calls and %d streams, want %d and %d", rep.Calls, rep.Streams, cfg.Calls, cfg.Streams)
	}
	if rep.StreamItems != int64(cfg.Streams*10) {
		t.Errorf("stream items = %d, want %d", rep.StreamItems, cfg.Streams*10)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Series {
		if len(s.Samples) < 3 {
			t.Errorf("%s: %d samples, want at least 3", s.Name, len(s.Samples))
		}
		if !strings.HasPrefix(s.Name, "gate-soak") && s.Samples[0].Goroutines < 0 {
			t.Errorf("%s: goroutines not sampled", s.Name)
		}
	}
}

// TestChurn connects waves of raw clients that call and leave: with the
// broker's native trimmer (-native-trim) its RSS after each wave falls
// back near where it started. Without it, 2,000 clients per wave leave
// ~60 MB behind and more with each wave.
func TestChurn(t *testing.T) {
	b := binaries(t)
	cfg := soak.ChurnConfig{Clients: 2000, Cycles: 3, Settle: 2500 * time.Millisecond, Broker: []string{"-native-trim", "1s"}}
	if long() {
		cfg = soak.ChurnConfig{Clients: 5000, Cycles: 5, Settle: 12 * time.Second}
	}
	rep, err := soak.Churn(t.Context(), b, cfg)
	if rep != nil {
		var out bytes.Buffer
		rep.Print(&out)
		t.Logf("\n%s", out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	const slack = 24 << 20
	for i, c := range rep.Cycles {
		if c.RSS > rep.StartRSS+slack {
			t.Errorf("cycle %d: broker RSS %.1f MB, more than 24 MB over the %.1f MB it started with",
				i+1, float64(c.RSS)/(1<<20), float64(rep.StartRSS)/(1<<20))
		}
	}
}

// TestScale holds idle workers and clients on one broker from two peer
// processes and reports the broker's idle CPU and RSS; every worker must
// stay registered. GATE_SOAK=long runs 1,000 workers and 10,000 clients
// over four processes.
func TestScale(t *testing.T) {
	b := binaries(t)
	cfg := soak.ScaleConfig{Workers: 100, Clients: 1000, Procs: 2, Heartbeat: time.Second, Measure: 3 * time.Second}
	if long() {
		cfg = soak.ScaleConfig{Workers: 1000, Clients: 10000, Procs: 4}
	}
	rep, err := soak.Scale(t.Context(), b, cfg)
	if rep != nil {
		var out bytes.Buffer
		rep.Print(&out)
		t.Logf("\n%s", out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.BrokerFDs < cfg.Workers+cfg.Clients {
		t.Errorf("broker holds %d fds, want at least one per peer (%d)", rep.BrokerFDs, cfg.Workers+cfg.Clients)
	}
}
