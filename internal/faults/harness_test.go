package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// hb is the heartbeat of every process in the battery; the broker's
// liveness is 3 intervals. Bounds are asserted in intervals of hb.
const (
	hb          = 200 * time.Millisecond
	testTimeout = 30 * time.Second
)

// intervals renders d in heartbeat intervals.
func intervals(d time.Duration) float64 { return float64(d) / float64(hb) }

func tcp(port int) string { return "tcp://127.0.0.1:" + strconv.Itoa(port) }

// proc is one process of the battery, killed at cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func start(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GATE_HEARTBEAT="+hb.String(), "GATE_LIVENESS=3", "GATE_LOG_FORMAT=json")
	if os.Getenv("GATE_TEST_LOG") != "" {
		cmd.Stderr = os.Stderr
		cmd.Env = append(cmd.Env, "GATE_LOG_LEVEL=debug")
	} else {
		cmd.Env = append(cmd.Env, "GATE_LOG_LEVEL=error")
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill SIGKILLs p (SIGCONT first, in case it is stopped) and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// brokerProc is a gate-broker with its ports and /metrics address.
type brokerProc struct {
	*proc
	front, back, metrics int
}

func startBroker(t testing.TB) *brokerProc {
	t.Helper()
	b := &brokerProc{front: gatetest.FreePort(t), back: gatetest.FreePort(t), metrics: gatetest.FreePort(t)}
	b.restart(t)
	return b
}

// restart starts the broker again on the same ports.
func (b *brokerProc) restart(t testing.TB) {
	t.Helper()
	b.proc = start(t, "broker", brokerBin, "-frontend", tcp(b.front), "-backend", tcp(b.back),
		"-metrics-addr", "127.0.0.1:"+strconv.Itoa(b.metrics), "-heartbeat", hb.String(), "-liveness", "3")
	waitFor(t, "broker /metrics", func() bool { _, err := b.scrape(); return err == nil })
}

// scrape reads the broker's /metrics: each series under its full name
// (`name{a="x",b="y"}`) and, under the bare name, the sum of its series.
func (b *brokerProc) scrape() (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(b.metrics)+"/metrics", nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series := line[:sp]
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		if i := strings.IndexByte(series, '{'); i >= 0 {
			m[series] = v // one series, labels as exposed (sorted by name)
			series = series[:i]
		}
		m[series] += v
	}
	return m, sc.Err()
}

// metric returns one summed metric, failing t if /metrics cannot be read.
func (b *brokerProc) metric(t testing.TB, name string) float64 {
	t.Helper()
	m, err := b.scrape()
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return m[name]
}

// waitMetric waits until cond holds for the metric and returns when.
func (b *brokerProc) waitMetric(t testing.TB, name string, cond func(float64) bool) time.Time {
	t.Helper()
	waitFor(t, name, func() bool {
		m, err := b.scrape()
		return err == nil && cond(m[name])
	})
	return time.Now()
}

// idle waits until the broker holds no request and reports its state.
func (b *brokerProc) idle(t testing.TB) {
	t.Helper()
	b.waitMetric(t, "gaterpc_broker_live_requests", func(v float64) bool { return v == 0 })
	b.waitMetric(t, "gaterpc_broker_inflight_requests", func(v float64) bool { return v == 0 })
	// A request detached from its caller keeps its worker busy until the
	// worker's final reply: idle workers only means every call ended there.
	b.waitMetric(t, "gaterpc_broker_workers", func(v float64) bool {
		m, err := b.scrape()
		return err == nil && m[`gaterpc_broker_workers{service="demo",state="idle"}`] == v
	})
}

func startWorker(t testing.TB, endpoint string, args ...string) *proc {
	t.Helper()
	return start(t, "worker", workerBin, append([]string{"-broker", endpoint, "-procs", "0"}, args...)...)
}

// waitFor polls cond every 10 ms until it holds or testTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newClient(t testing.TB, endpoint string, opts ...gate.ClientOption) *gate.Client {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("GATE_TEST_LOG") != "" {
		log = slog.Default()
	}
	all := append([]gate.ClientOption{gate.WithHeartbeat(hb), gate.WithLiveness(3), gate.WithTimeout(testTimeout), gate.WithLogger(log)}, opts...)
	c, err := gate.NewClient(endpoint, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n := c.Pending(); n != 0 {
			t.Errorf("client: %d calls still pending at the end", n)
		}
		c.Close()
	})
	return c
}

// waitService calls demo.echo until it answers and returns when it did.
func waitService(t testing.TB, c *gate.Client) time.Time {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), hb)
		_, err := c.Call(ctx, "demo.echo", 1)
		cancel()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo.echo never answered: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// isClass reports whether err is a remote *gate.Error of the class.
func isClass(err error, class string) bool {
	var ge *gate.Error
	return errors.As(err, &ge) && ge.Class == class
}

// proxy forwards TCP connections from a loopback port to target. It can
// stall the links (stop forwarding, connections stay open) and cut them
// (close every connection; new ones are accepted).
type proxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	resume chan struct{} // nil: forwarding; open: stalled until closed
	closed bool
}

func startProxy(t testing.TB, targetPort int) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: "127.0.0.1:" + strconv.Itoa(targetPort), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) endpoint() string { return "tcp://" + p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

// pipe copies src to dst, waiting while the proxy is stalled; it closes
// both when either side ends.
func (p *proxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitResume(src) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitResume blocks while the proxy is stalled; false when src was cut.
func (p *proxy) waitResume(src net.Conn) bool {
	for {
		p.mu.Lock()
		ch := p.resume
		_, live := p.conns[src]
		p.mu.Unlock()
		if !live {
			return false
		}
		if ch == nil {
			return true
		}
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond): // recheck for a cut
		}
	}
}

// stall stops forwarding; the connections stay open.
func (p *proxy) stall() {
	p.mu.Lock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
	p.mu.Unlock()
}

// unstall forwards again.
func (p *proxy) unstall() {
	p.mu.Lock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
	p.mu.Unlock()
}

// cut closes every connection (both sides see it end); the listener stays.
func (p *proxy) cut() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.l.Close()
	p.unstall()
	p.cut()
	p.wg.Wait()
}

// childEnv makes the test binary a client process (runChild) instead of
// running tests: the vanishing client of TestClientVanishesMidStream.
const childEnv = "GATE_FAULTS_CHILD"

// runChild streams demo.count from the broker in $GATE_FAULTS_CHILD,
// prints "streaming" after the first item and reads until killed.
func runChild() int {
	c, err := gate.NewClient(os.Getenv(childEnv), gate.WithHeartbeat(hb))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	s, err := c.Stream(context.Background(), "demo.count", 1<<40)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := s.Recv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("streaming")
	for {
		if _, err := s.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, err)
			}
			return 1
		}
	}
}
