package gate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

const wE2ETimeout = 10 * time.Second

// workerE2EService is the service the end-to-end tests call.
func workerE2EService(t testing.TB, cancelled chan<- error) *gate.Service {
	t.Helper()
	svc, err := gate.NewService("E2E", "end to end")
	if err != nil {
		t.Fatal(err)
	}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(gate.Func2(svc, "add", func(_ context.Context, a, b int) (int, error) { return a + b, nil }))
	check(svc.Register("echo", func(_ context.Context, kw gate.Kwargs, args ...any) (map[string]any, error) {
		return map[string]any{"args": args, "kwargs": map[string]any(kw)}, nil
	}))
	check(svc.Register("fail", func(_ context.Context, msg string) error {
		return &gate.Error{Code: gate.InvalidArgument, Class: "ValueError", Message: "ValueError(" + fmt.Sprintf("%q", msg) + ")"}
	}))
	check(gate.Func1(svc, "count", func(ctx context.Context, n int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := range n {
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	check(gate.Func1(svc, "blob", func(_ context.Context, n int) (gate.HugeValue, error) {
		return gate.Huge(bytes.Repeat([]byte("gate"), n/4)), nil
	}))
	check(svc.Register("remaining", func(ctx context.Context) (float64, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return -1, nil
		}
		return time.Until(dl).Seconds(), nil
	}))
	check(svc.Register("forever", func(ctx context.Context) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			defer func() {
				if cancelled != nil {
					cancelled <- ctx.Err()
				}
			}()
			for i := 0; ; i++ {
				if !yield(i) || ctx.Err() != nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}, nil
	}))
	return svc
}

// startWorkerE2E starts a broker on tr, a worker for svc and a client.
func startWorkerE2E(t *testing.T, tr gatetest.Transport, svc *gate.Service) *gate.Client {
	t.Helper()
	// 1s rather than the harness's 100ms: with -race on two cores the
	// broker's loop can spend more than 3 × 250ms relaying a 10,000-item
	// stream, and then neither heartbeats nor keeps workers alive.
	const hb = time.Second
	h := gatetest.StartBrokerOn(t, tr, broker.WithHeartbeat(hb))
	w, err := gate.NewWorker(h.Backend, svc, gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(hb), gate.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("worker Shutdown = %v", err)
		}
		if err := <-errc; !errors.Is(err, gate.ErrClosed) {
			t.Errorf("worker Serve = %v, want ErrClosed", err)
		}
	})
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(hb), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// wait until the worker is registered
	ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
	defer cancel()
	for {
		if _, err := c.Call(ctx, "E2E.add", 1, 1); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("worker never became callable: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

func TestE2EWorkerTransports(t *testing.T) {
	for _, tr := range []gatetest.Transport{gatetest.Inproc, gatetest.IPC} { // TCP: see the report (harness binds both ends to :0)
		t.Run(tr.Name, func(t *testing.T) {
			c := startWorkerE2E(t, tr, workerE2EService(t, nil))
			ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
			defer cancel()
			if got, err := c.Call(ctx, "E2E.add", 40, 2); err != nil || got != int64(42) {
				t.Fatalf("add(40, 2) = %v, %v", got, err)
			}
		})
	}
}

func TestE2EWorker(t *testing.T) {
	cancelled := make(chan error, 1)
	c := startWorkerE2E(t, gatetest.Inproc, workerE2EService(t, cancelled))
	ctx, cancel := context.WithTimeout(context.Background(), wE2ETimeout)
	defer cancel()

	t.Run("kwargs", func(t *testing.T) {
		got, err := c.CallKW(ctx, "E2E.echo", []any{"a", 1}, map[string]any{"k": true})
		m, _ := got.(map[string]any)
		if err != nil || fmt.Sprint(m["args"]) != "[a 1]" || fmt.Sprint(m["kwargs"]) != "map[k:true]" {
			t.Fatalf("echo = %v, %v", got, err)
		}
	})
	t.Run("exception", func(t *testing.T) {
		_, err := c.Call(ctx, "E2E.fail", "boom!")
		var ge *gate.Error
		if !errors.As(err, &ge) || ge.Class != "ValueError" || !strings.Contains(ge.Message, "boom!") || gate.CodeOf(err) != gate.InvalidArgument {
			t.Fatalf("fail = %v", err)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		_, err := c.Call(ctx, "E2E.nope")
		var ge *gate.Error
		if !errors.As(err, &ge) || ge.Class != "AttributeError" || gate.CodeOf(err) != gate.Unimplemented {
			t.Fatalf("nope = %v", err)
		}
	})
	t.Run("interfaces", func(t *testing.T) {
		ifs, err := c.Interfaces(ctx, "E2E")
		if err != nil || len(ifs) != 8 {
			t.Fatalf("Interfaces = %v, %v", ifs, err)
		}
	})
	for _, n := range []int{0, 3, 10000} {
		t.Run(fmt.Sprint("stream", n), func(t *testing.T) {
			s, err := c.Stream(ctx, "E2E.count", n)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			i := 0
			for v, err := range s.All() {
				if err != nil {
					t.Fatal(err)
				}
				if v != int64(i) {
					t.Fatalf("item %d = %v", i, v)
				}
				i++
			}
			if i != n {
				t.Fatalf("got %d items, want %d", i, n)
			}
		})
	}
	t.Run("huge 1MB", func(t *testing.T) {
		got, err := c.Call(ctx, "E2E.blob", 1<<20)
		if b, _ := got.([]byte); err != nil || len(b) != 1<<20 || !bytes.HasPrefix(b, []byte("gategate")) {
			t.Fatalf("blob = %d bytes, %v", len(b), err)
		}
	})
	t.Run("deadline budget", func(t *testing.T) {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		defer dcancel()
		got, err := c.Call(dctx, "E2E.remaining")
		if secs, _ := got.(float64); err != nil || secs <= 0 || secs > 2 {
			t.Fatalf("remaining with a 2s deadline = %v, %v", got, err)
		}
	})
	t.Run("stream early close cancels the handler", func(t *testing.T) {
		s, err := c.Stream(ctx, "E2E.forever")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		select {
		case err := <-cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("handler ctx err = %v, want Canceled", err)
			}
		case <-ctx.Done():
			t.Fatal("the worker's handler was not cancelled after the stream was closed")
		}
	})
}

// BenchmarkE2EWorkerCall measures a full call: client → broker → worker
// and back over inproc.
func BenchmarkE2EWorkerCall(b *testing.B) {
	h := gatetest.StartBroker(b, broker.WithHeartbeat(time.Second))
	svc, _ := gate.NewService("Bench", "")
	_ = gate.Func1(svc, "echo", func(_ context.Context, v []byte) ([]byte, error) { return v, nil })
	quiet := slog.New(slog.DiscardHandler)
	w, err := gate.NewWorker(h.Backend, svc, gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(time.Second), gate.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	gatetest.ServeWorker(b, w)
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(time.Second), gate.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := c.Call(ctx, "Bench.echo", []byte{}); err == nil {
			break
		} else if ctx.Err() != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, size := range []int{128, 4096, 65536, 1 << 20} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Call(ctx, "Bench.echo", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
