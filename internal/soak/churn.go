package soak

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"text/tabwriter"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/wire"
)

// ChurnConfig sizes a client churn check.
type ChurnConfig struct {
	Clients int           // clients per cycle [5,000]
	Cycles  int           // [5]
	Settle  time.Duration // pause after each cycle before sampling [3s]
	Broker  []string      // extra gate-broker flags
	Log     io.Writer
}

// ChurnCycle is the broker's state after one cycle.
type ChurnCycle struct {
	Elapsed    time.Duration
	RSS        int64
	HeapInuse  float64 // go_memstats_heap_inuse_bytes
	Goroutines int
}

// ChurnReport is the outcome of a churn check.
type ChurnReport struct {
	Clients  int
	StartRSS int64 // before the first cycle
	Cycles   []ChurnCycle
}

// Print writes the per-cycle table.
func (r *ChurnReport) Print(w io.Writer) {
	fmt.Fprintf(w, "churn: %d clients per cycle connect, call demo.echo and leave; broker before: RSS %.1f MB\n",
		r.Clients, mb(r.StartRSS))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cycle\ttime\tbroker RSS MB\tGo heap in use MB\tgoroutines\t")
	for i, c := range r.Cycles {
		fmt.Fprintf(tw, "%d\t%v\t%.1f\t%.1f\t%d\t\n", i+1, c.Elapsed.Round(time.Millisecond), mb(c.RSS),
			c.HeapInuse/(1<<20), c.Goroutines)
	}
	tw.Flush()
}

// Growth is the broker's RSS after the last cycle minus after the
// first.
func (r *ChurnReport) Growth() int64 {
	if len(r.Cycles) < 2 {
		return 0
	}
	return r.Cycles[len(r.Cycles)-1].RSS - r.Cycles[0].RSS
}

// Churn starts a broker and one demo worker; each cycle opens
// cfg.Clients raw client sockets from this process, sends a demo.echo
// from each, waits for every reply and closes them all, then samples
// the broker.
func Churn(ctx context.Context, bin Binaries, cfg ChurnConfig) (*ChurnReport, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 5000
	}
	if cfg.Cycles <= 0 {
		cfg.Cycles = 5
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	front, back, bm, err := brokerAddrs()
	if err != nil {
		return nil, err
	}
	var procs []*Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Stop(5 * time.Second)
		}
	}()
	args := append([]string{"-frontend", front, "-backend", back, "-metrics-addr", bm, "-log-level", "warn",
		"-log-format", "text"}, cfg.Broker...)
	br, err := Start("gate-broker", bm, bin.Broker, args...)
	if err != nil {
		return nil, err
	}
	procs = append(procs, br)
	if err := WaitHTTP(ctx, bm, "/healthz", 20*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, br.Output())
	}
	w, err := Start("gate-demo-worker", "", bin.Worker, "-broker", back, "-procs", "0", "-log-level", "warn",
		"-log-format", "text")
	if err != nil {
		return nil, err
	}
	procs = append(procs, w)
	if err := waitWorkers(ctx, bm, 1); err != nil {
		return nil, err
	}
	rep := &ChurnReport{Clients: cfg.Clients}
	rep.StartRSS, _ = RSS(br.Pid())
	for i := range cfg.Cycles {
		t0 := time.Now()
		if err := churnCycle(ctx, front, cfg.Clients); err != nil {
			return rep, fmt.Errorf("cycle %d: %w", i+1, err)
		}
		el := time.Since(t0)
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(cfg.Settle):
		}
		c := ChurnCycle{Elapsed: el}
		c.RSS, _ = RSS(br.Pid())
		if m, err := Gauges(ctx, bm, "go_memstats_heap_inuse_bytes", "go_goroutines"); err == nil {
			c.HeapInuse = m["go_memstats_heap_inuse_bytes"]
			c.Goroutines = int(m["go_goroutines"])
		}
		rep.Cycles = append(rep.Cycles, c)
		fmt.Fprintf(cfg.Log, "churn: cycle %d in %v: broker RSS %.1f MB, Go heap %.1f MB\n", i+1,
			el.Round(time.Millisecond), mb(c.RSS), c.HeapInuse/(1<<20))
	}
	return rep, nil
}

// churnCycle connects n DEALERs, sends demo.echo(1) from each, waits
// for every reply (2 minutes at most) and closes them.
func churnCycle(ctx context.Context, endpoint string, n int) error {
	zctx, err := newContext(n)
	if err != nil {
		return err
	}
	defer zctx.Term()
	socks := make([]*zmq.Socket, 0, n)
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	poller := zmq.NewPoller()
	for range n {
		s, err := dealer(zctx, endpoint)
		if err != nil {
			return err
		}
		socks = append(socks, s)
		poller.Add(s, zmq.POLLIN)
		frames := wire.ClientRequest{Service: "demo", RequestID: id(), Body: echoBody}.Frames()
		if _, err := s.SendMessageDontwait(frames); err != nil {
			return err
		}
	}
	got := make([]bool, n)
	left := n
	deadline := time.Now().Add(2 * time.Minute)
	for left > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d replies missing after 2m", left, n)
		}
		polled, err := poller.PollAll(100 * time.Millisecond)
		if err != nil {
			if err == zmq.Errno(syscall.EINTR) {
				continue
			}
			return err
		}
		for i, p := range polled {
			if p.Events&zmq.POLLIN == 0 {
				continue
			}
			for {
				msg, err := socks[i].RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				r, err := wire.ParseClientReply(msg)
				if err != nil {
					return fmt.Errorf("client %d: %w", i, err)
				}
				if k, _ := wire.ClassifyReply(r.Body); k.IsError() {
					return fmt.Errorf("client %d: error reply %x", i, r.Body)
				}
				if !got[i] {
					got[i] = true
					left--
				}
			}
		}
	}
	return nil
}
