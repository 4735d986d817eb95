package broker_test

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// echoBound is the generous bound on an unrelated echo round trip while
// hostile input is being handled (the target is 100 ms; shared CI
// machines under -race need the slack). The measured figure is logged.
const echoBound = time.Second

// hostileLong reports whether GATE_HOSTILE=long asks for the larger
// floods.
func hostileLong() bool { return os.Getenv("GATE_HOSTILE") == "long" }

// scale picks the CI size or, with GATE_HOSTILE=long, the long one.
func scale(short, long int) int {
	if hostileLong() {
		return long
	}
	return short
}

// hostile is a broker on tcp://127.0.0.1 with a well-behaved echo
// worker and client that measure the broker's service while an attacker
// does its worst. Liveness is far away so the raw peers need not
// heartbeat while the test floods.
type hostile struct {
	h     *gatetest.Harness
	echo  *gatetest.RawWorker
	probe *gatetest.RawClient
	n     int
	heap0 uint64
}

func startHostile(t *testing.T, opts ...broker.Option) *hostile {
	t.Helper()
	opts = append([]broker.Option{broker.WithLiveness(1000)}, opts...)
	h := gatetest.StartBrokerOn(t, gatetest.TCP, opts...)
	e := &hostile{h: h, echo: readyWorker(t, h, "echo", 8), probe: h.RawClient(t)}
	e.heap0 = heapInuse()
	e.roundTrip(t, "before")
	return e
}

// roundTrip sends one echo request through the broker and fails the test
// if it does not come back, with the right body, within echoBound.
func (e *hostile) roundTrip(t *testing.T, when string) time.Duration {
	t.Helper()
	e.n++
	id := rid(100000 + e.n)
	want := result(t, e.n)
	start := time.Now()
	e.echo.Heartbeat() // a worker that speaks is in rotation
	e.probe.Request("echo", id, call(t, "echo", e.n)...)
	req := e.echo.NextRequest(recvTimeout)
	e.echo.Reply(req.Client, req.RequestID, want)
	rep := e.probe.NextReply(recvTimeout)
	d := time.Since(start)
	if !bytes.Equal(rep.RequestID, id) || len(rep.Body) != 1 || !bytes.Equal(rep.Body[0], want) {
		t.Fatalf("echo %s: reply %q %x, want %q %x", when, rep.RequestID, rep.Body, id, want)
	}
	t.Logf("echo round trip %s: %v", when, d)
	if d > echoBound {
		t.Errorf("echo round trip %s took %v, want under %v", when, d, echoBound)
	}
	return d
}

// settled checks that the broker holds nothing for the attacker: no
// request live or buffered, only the wanted workers, and the Go heap of
// the test process (the broker runs in it) within 64 MiB of where it was
// before the attack. It returns the broker's stats.
func (e *hostile) settled(t *testing.T, workers int) broker.Stats {
	t.Helper()
	st := waitStats(t, e.h, "the broker idle", func(st broker.Stats) bool {
		return st.Requests == 0 && st.InFlight == 0 && st.Buffered == 0 && st.Workers == workers
	})
	h := heapInuse()
	if h > e.heap0+64<<20 {
		t.Errorf("Go heap in use %.1f MB after the attack, %.1f MB before", mib(h), mib(e.heap0))
	}
	t.Logf("after the attack: Go heap in use %.1f MB (%.1f MB before); test process %s", mib(h), mib(e.heap0), procMem())
	return st
}

// waitDrops waits until Stats.Drops[key] reaches want and fails if it
// goes beyond.
func (e *hostile) waitDrops(t *testing.T, key string, want uint64) {
	t.Helper()
	st := waitStats(t, e.h, "drops of "+key, func(st broker.Stats) bool { return st.Drops[key] >= want })
	if st.Drops[key] != want {
		t.Errorf("Drops[%q] = %d, want %d (all %v)", key, st.Drops[key], want, st.Drops)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// countDisconnects reads what w got within d and counts DISCONNECTs.
func countDisconnects(w *gatetest.RawWorker, d time.Duration) int {
	n := 0
	deadline := time.Now().Add(d)
	for time.Until(deadline) > 0 {
		m, err := w.NextMessage(time.Until(deadline))
		if err != nil {
			return n
		}
		if m.Command == wire.CmdDisconnect {
			n++
		}
	}
	return n
}

// procMem is this process's VmRSS and VmHWM (peak) from /proc, for the
// log: the broker under test runs in this process.
func procMem() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "(no /proc)"
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}
