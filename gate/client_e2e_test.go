package gate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

const clE2ETimeout = 20 * time.Second

// clHeartbeat is the broker's and the worker's heartbeat in these tests:
// long enough that a worker busy streaming under -race on two cores is not
// declared dead.
const clHeartbeat = 500 * time.Millisecond

// clTransports is gatetest's matrix with a TCP pair the broker accepts
// (it rejects two identical "tcp://127.0.0.1:0" endpoints; "*" and "0"
// both pick a free port).
func clTransports() []gatetest.Transport {
	tcp := gatetest.Transport{Name: "tcp", Endpoints: func(testing.TB) (string, string) {
		return "tcp://127.0.0.1:*", "tcp://127.0.0.1:0"
	}}
	return []gatetest.Transport{gatetest.Inproc, gatetest.IPC, tcp}
}

// clBroker starts a broker with clHeartbeat.
func clBroker(t testing.TB, tr gatetest.Transport) *gatetest.Harness {
	t.Helper()
	return gatetest.StartBrokerOn(t, tr, broker.WithHeartbeat(clHeartbeat))
}

func clCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), clE2ETimeout)
	t.Cleanup(cancel)
	return ctx
}

// clService is the service the end-to-end tests call.
func clService(t testing.TB) *gate.Service {
	t.Helper()
	svc, err := gate.NewService("E2E", "client end-to-end tests")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(gate.Func1(svc, "echo", func(_ context.Context, v any) (any, error) { return v, nil }))
	must(svc.Register("echo_kw", func(_ context.Context, kw gate.Kwargs, args ...any) (map[string]any, error) {
		return map[string]any{"args": args, "kwargs": map[string]any(kw)}, nil
	}))
	must(gate.Func1(svc, "fail", func(_ context.Context, msg string) (any, error) {
		return nil, &gate.Error{Code: gate.InvalidArgument, Class: "ValueError", Message: "ValueError('" + msg + "')"}
	}))
	must(gate.Func1(svc, "count", func(_ context.Context, n int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := range n {
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	must(gate.Func0(svc, "nils", func(context.Context) (iter.Seq[any], error) {
		return func(yield func(any) bool) {
			_ = yield(nil) && yield(1) && yield(nil)
		}, nil
	}))
	must(gate.Func1(svc, "boom_after", func(_ context.Context, n int) (iter.Seq2[int, error], error) {
		return func(yield func(int, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
			yield(0, &gate.Error{Code: gate.Internal, Class: "RuntimeError", Message: "RuntimeError('mid-stream')"})
		}, nil
	}))
	must(gate.Func1(svc, "endless", func(ctx context.Context, _ int) (iter.Seq[int], error) {
		return func(yield func(int) bool) {
			for i := 0; ctx.Err() == nil; i++ {
				if !yield(i) {
					return
				}
			}
		}, nil
	}))
	must(gate.Func1(svc, "huge", func(_ context.Context, n int) (any, error) {
		b := make([]byte, n)
		r := rand.NewChaCha8([32]byte{1})
		_, _ = r.Read(b[:n/2]) // half random, half zeros
		return gate.Huge(b), nil
	}))
	must(gate.Func2(svc, "huge_parts", func(_ context.Context, n, part int) (any, error) {
		// msgpack caps one bin at 32 MiB: a large value is a list of parts.
		var parts [][]byte
		r := rand.NewChaCha8([32]byte{2})
		for n > 0 {
			p := make([]byte, min(part, n))
			_, _ = r.Read(p[:len(p)/4])
			parts = append(parts, p)
			n -= len(p)
		}
		return gate.Huge(parts), nil
	}))
	must(gate.Func1(svc, "sleep", func(ctx context.Context, ms int) (bool, error) {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}))
	return svc
}

type clEnv struct {
	h   *gatetest.Harness
	c   *gate.Client
	svc *gate.Service
}

func clQuiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// clStartWorker runs a worker of svc against h until cleanup.
func clStartWorker(t testing.TB, h *gatetest.Harness, svc *gate.Service, opts ...gate.WorkerOption) *gate.Worker {
	t.Helper()
	all := append([]gate.WorkerOption{gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(clHeartbeat), gate.WithLogger(clQuiet())}, opts...)
	w, err := svc.NewWorker(h.Backend, all...)
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)
	return w
}

func clNewEnv(t testing.TB, tr gatetest.Transport, copts ...gate.ClientOption) *clEnv {
	t.Helper()
	h := clBroker(t, tr)
	svc := clService(t)
	clStartWorker(t, h, svc)
	c := clNewClient(t, h, copts...)
	clWaitReady(t, c)
	return &clEnv{h: h, c: c, svc: svc}
}

// clWaitReady waits until a worker of E2E answers.
func clWaitReady(t testing.TB, c *gate.Client) {
	t.Helper()
	ctx := clCtx(t)
	for {
		if _, err := c.Call(ctx, "E2E.echo", 1); err == nil {
			return
		} else if ctx.Err() != nil {
			t.Fatalf("worker never became reachable: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func clNewClient(t testing.TB, h *gatetest.Harness, copts ...gate.ClientOption) *gate.Client {
	t.Helper()
	all := append([]gate.ClientOption{gate.WithZMQContext(h.Ctx), gate.WithHeartbeat(clHeartbeat), gate.WithLogger(clQuiet())}, copts...)
	c, err := gate.NewClient(h.Frontend, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientE2ECallTypes(t *testing.T) {
	for _, tr := range clTransports() {
		t.Run(tr.Name, func(t *testing.T) {
			env := clNewEnv(t, tr)
			ctx := clCtx(t)
			tests := []struct {
				name string
				in   any
				want any
			}{
				{"nil", nil, nil},
				{"true", true, true},
				{"false", false, false},
				{"zero", 0, int64(0)},
				{"fixint", 127, int64(127)},
				{"negfix", -32, int64(-32)},
				{"int8", -128, int64(-128)},
				{"uint16", 65535, int64(65535)},
				{"int64min", int64(math.MinInt64), int64(math.MinInt64)},
				{"int64max", int64(math.MaxInt64), int64(math.MaxInt64)},
				{"uint64max", uint64(math.MaxUint64), uint64(math.MaxUint64)},
				{"float", 1.5, 1.5},
				{"float32", float32(0.25), 0.25},
				{"inf", math.Inf(-1), math.Inf(-1)},
				{"maxfloat", math.MaxFloat64, math.MaxFloat64},
				{"smallfloat", math.SmallestNonzeroFloat64, math.SmallestNonzeroFloat64},
				{"str", "héllo", "héllo"},
				{"emptystr", "", ""},
				{"bytes", []byte{0, 1, 2}, []byte{0, 1, 2}},
				{"emptybytes", []byte{}, []byte{}},
				{"list", []any{1, "a", nil}, []any{int64(1), "a", nil}},
				{"map", map[string]any{"a": 1, "b": []any{true}}, map[string]any{"a": int64(1), "b": []any{true}}},
				{"intkeys", map[int]string{1: "one", -2: "minus two"}, map[string]any{"1": "one", "-2": "minus two"}},
				{"nested", map[string]any{"x": map[string]any{"y": []any{[]any{}, map[string]any{}}}}, map[string]any{"x": map[string]any{"y": []any{[]any{}, map[string]any{}}}}},
				{"longstr", string(bytes.Repeat([]byte("z"), 70000)), string(bytes.Repeat([]byte("z"), 70000))},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := env.c.Call(ctx, "E2E.echo", tt.in)
					if err != nil || !reflect.DeepEqual(got, tt.want) {
						t.Fatalf("echo(%#v) = %#v, %v; want %#v", tt.in, got, err, tt.want)
					}
				})
			}
		})
	}
}

func TestClientE2EKwargsErrorsAndInternal(t *testing.T) {
	env := clNewEnv(t, gatetest.Inproc)
	c := env.c
	ctx := clCtx(t)

	got, err := c.Call(ctx, "E2E.echo_kw", "a", 1, gate.Kwargs{"k": true})
	want := map[string]any{"args": []any{"a", int64(1)}, "kwargs": map[string]any{"k": true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("echo_kw = %#v, %v; want %#v", got, err, want)
	}
	if v, err := gate.CallAs[string](ctx, c, "E2E.echo", "typed"); err != nil || v != "typed" {
		t.Fatalf("CallAs[string] = %q, %v", v, err)
	}
	if v, err := c.Service("E2E").Call(ctx, "echo", 7); err != nil || v != int64(7) {
		t.Fatalf("Service.Call = %v, %v", v, err)
	}

	_, err = c.Call(ctx, "E2E.fail", "boom!")
	var ge *gate.Error
	if !errors.As(err, &ge) || ge.Code != gate.InvalidArgument || ge.Class != "ValueError" || ge.Message != "ValueError('boom!')" {
		t.Fatalf("fail = %#v", err)
	}
	if _, err := c.Call(ctx, "E2E.no_such_method"); gate.CodeOf(err) != gate.Unimplemented {
		t.Fatalf("unknown method = %v, want Unimplemented (AttributeError)", err)
	}
	if _, err := c.Call(ctx, "NoSuchService.x"); gate.CodeOf(err) != gate.Unavailable || !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("unknown service = %v, want Unavailable matching ErrNoService", err)
	}
	if _, err := gate.CallAs[int](ctx, c, "E2E.echo", "not an int"); gate.CodeOf(err) != gate.InvalidArgument {
		t.Fatalf("CallAs[int](str) = %v, want InvalidArgument", err)
	}

	svcs, err := c.Services(ctx)
	if err != nil || !reflect.DeepEqual(svcs, []string{"E2E", "Gate"}) {
		t.Fatalf("Services = %v, %v", svcs, err)
	}
	info, err := c.Info(ctx)
	if err != nil || len(info.ID) != 16 || !reflect.DeepEqual(info.Services, []string{"E2E"}) {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if d, err := c.QueryService(ctx, "E2E"); err != nil || d != "client end-to-end tests" {
		t.Fatalf("QueryService = %q, %v", d, err)
	}
	if _, err := c.QueryService(ctx, "Nope"); !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("QueryService(Nope) = %v, want ErrNoService", err)
	}
	ifs, err := c.Interfaces(ctx, "E2E")
	if err != nil || ifs["echo"].Signature == "" || len(ifs) < 5 {
		t.Fatalf("Interfaces = %v, %v", ifs, err)
	}
}

func TestClientE2EStreams(t *testing.T) {
	env := clNewEnv(t, gatetest.Inproc)
	c := env.c
	ctx := clCtx(t)
	for _, n := range []int{0, 3, 10000} {
		t.Run(fmt.Sprint("count", n), func(t *testing.T) {
			s, err := gate.StreamAs[int](ctx, c, "E2E.count", n)
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			for v, err := range s.All() {
				if err != nil || v != i {
					t.Fatalf("item %d = %v, %v", i, v, err)
				}
				i++
			}
			if i != n {
				t.Fatalf("%d items, want %d", i, n)
			}
		})
	}
	t.Run("collected by Call", func(t *testing.T) {
		v, err := c.Call(ctx, "E2E.count", 3)
		if err != nil || !reflect.DeepEqual(v, []any{int64(0), int64(1), int64(2)}) {
			t.Fatalf("Call(count 3) = %#v, %v", v, err)
		}
		ints, err := gate.CallAs[[]int](ctx, c, "E2E.count", 4)
		if err != nil || !reflect.DeepEqual(ints, []int{0, 1, 2, 3}) {
			t.Fatalf("CallAs[[]int](count 4) = %v, %v", ints, err)
		}
	})
	t.Run("nil items kept", func(t *testing.T) {
		v, err := c.Call(ctx, "E2E.nils")
		if err != nil || !reflect.DeepEqual(v, []any{nil, int64(1), nil}) {
			t.Fatalf("nils = %#v, %v", v, err)
		}
	})
	t.Run("error mid-stream", func(t *testing.T) {
		s, err := c.Stream(ctx, "E2E.boom_after", 2)
		if err != nil {
			t.Fatal(err)
		}
		var items []any
		var last error
		for v, err := range s.All() {
			if err != nil {
				last = err
				break
			}
			items = append(items, v)
		}
		var ge *gate.Error
		if len(items) != 2 || !errors.As(last, &ge) || ge.Class != "RuntimeError" {
			t.Fatalf("items %v, error %v", items, last)
		}
	})
	t.Run("early close", func(t *testing.T) {
		s, err := c.Stream(ctx, "E2E.endless", 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, err := range s.All() {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 100 {
				break
			}
		}
		// The worker's generator stops; the client stays usable.
		if v, err := c.Call(ctx, "E2E.echo", "after"); err != nil || v != "after" {
			t.Fatalf("call after early close = %v, %v", v, err)
		}
		clWaitPending(t, c)
	})
}

func clWaitPending(t testing.TB, c *gate.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Pending() = %d, want 0", c.Pending())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClientE2EHuge(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd", "bzip2", "xz"} {
		t.Run(comp, func(t *testing.T) {
			h := clBroker(t, gatetest.Inproc)
			clStartWorker(t, h, clService(t), gate.WithHugeData(comp, 1, 1000))
			c := clNewClient(t, h)
			ctx := clCtx(t)
			clWaitReady(t, c)
			n := 1 << 20
			if comp == "bzip2" || comp == "xz" {
				n = 256 << 10 // slow under -race
			}
			v, err := gate.CallAs[[]byte](ctx, c, "E2E.huge", n)
			if err != nil || len(v) != n || v[n-1] != 0 {
				t.Fatalf("huge(%d) = %d bytes, %v", n, len(v), err)
			}
		})
	}
	// HugeDataMaxSize, not the msgpack caps, bounds a HugeData value: a
	// 3 MiB blob reaches a client whose MaxBinLen is 1 MiB (the same as a
	// 50 MB value under the default 32 MiB cap), typed or not.
	t.Run("over MaxBinLen", func(t *testing.T) {
		small := func() gate.Settings {
			s := gate.DefaultSettings()
			s.MaxBinLen = 1 << 20
			return s
		}()
		h := clBroker(t, gatetest.Inproc)
		// The worker's MaxBinLen bounds what it decodes, not the results
		// it sends as HugeData.
		clStartWorker(t, h, clService(t), gate.WithSettings(small), gate.WithHugeData("zstd", 1, 64<<10), gate.WithHeartbeat(clHeartbeat))
		big, err := gate.NewService("Big", "plain results over MaxBinLen")
		if err != nil {
			t.Fatal(err)
		}
		if err := gate.Func1(big, "blob", func(_ context.Context, n int) ([]byte, error) { return make([]byte, n), nil }); err != nil {
			t.Fatal(err)
		}
		clStartWorker(t, h, big, gate.WithSettings(small), gate.WithHugeData("zstd", 1, 64<<10), gate.WithHeartbeat(clHeartbeat))
		c := clNewClient(t, h, gate.WithSettings(small))
		ctx := clCtx(t)
		clWaitReady(t, c)
		n := 3 << 20
		// A plain []byte result over the worker's MaxBinLen leaves as
		// HugeData (auto), not as an encoding error.
		for {
			b, err := gate.CallAs[[]byte](ctx, c, "Big.blob", n)
			if err == nil && len(b) == n {
				break
			}
			if !errors.Is(err, gate.ErrNoService) || ctx.Err() != nil {
				t.Fatalf("Big.blob(%d) = %d bytes, %v", n, len(b), err)
			}
			time.Sleep(10 * time.Millisecond) // Big's worker is still registering
		}
		v, err := gate.CallAs[[]byte](ctx, c, "E2E.huge", n)
		if err != nil || len(v) != n {
			t.Fatalf("CallAs[[]byte](huge %d) = %d bytes, %v", n, len(v), err)
		}
		a, err := c.Call(ctx, "E2E.huge", n)
		if b, ok := a.([]byte); err != nil || !ok || len(b) != n {
			t.Fatalf("Call(huge %d) = %T, %v", n, a, err)
		}
	})
	t.Run("bomb rejected", func(t *testing.T) {
		h := clBroker(t, gatetest.Inproc)
		clStartWorker(t, h, clService(t))
		c := clNewClient(t, h, gate.WithSettings(func() gate.Settings {
			s := gate.DefaultSettings()
			s.HugeDataMaxSize = 256 << 10
			return s
		}()))
		ctx := clCtx(t)
		clWaitReady(t, c)
		if _, err := c.Call(ctx, "E2E.huge", 4<<20); !errors.Is(err, gate.ErrTooLarge) {
			t.Fatalf("huge(4 MiB) with a 256 KiB cap = %v, want ErrTooLarge", err)
		}
		clWaitPending(t, c)
	})
}

func TestClientE2EHuge100MB(t *testing.T) {
	// Default heartbeats: compressing 100 MiB starves every loop on two
	// cores, and this test measures the transfer, not liveness.
	h := gatetest.StartBrokerOn(t, gatetest.Inproc, broker.WithHeartbeat(gate.DefaultSettings().Heartbeat))
	clStartWorker(t, h, clService(t), gate.WithHugeData("zstd", 1, 64<<10), gate.WithHeartbeat(gate.DefaultSettings().Heartbeat))
	c := clNewClient(t, h, gate.WithHeartbeat(gate.DefaultSettings().Heartbeat))
	ctx := clCtx(t)
	clWaitReady(t, c)
	n := 100 << 20
	if raceEnabled {
		n = 16 << 20 // -race makes 100 MiB take minutes
	}
	start := time.Now()
	v, err := gate.CallAs[[][]byte](ctx, c, "E2E.huge_parts", n, 10<<20)
	got := 0
	for _, p := range v {
		got += len(p)
	}
	if err != nil || got != n {
		t.Fatalf("huge_parts(%d) = %d bytes, %v", n, got, err)
	}
	t.Logf("%d MiB huge reply in %v", n>>20, time.Since(start))
}

func TestClientE2EConcurrentCalls(t *testing.T) {
	env := clNewEnv(t, gatetest.Inproc)
	ctx := clCtx(t)
	const goroutines, each = 50, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				n := g*1000 + i
				v, err := gate.CallAs[int](ctx, env.c, "E2E.echo", n)
				if err != nil || v != n {
					t.Errorf("echo(%d) = %v, %v", n, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	clWaitPending(t, env.c)
}

func TestClientE2EDeadline(t *testing.T) {
	env := clNewEnv(t, gatetest.Inproc)
	ctx := clCtx(t)
	callCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := env.c.Call(callCtx, "E2E.sleep", 5000)
	if gate.CodeOf(err) != gate.DeadlineExceeded {
		t.Fatalf("sleep past the deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("deadline honoured after %v", d)
	}
	clWaitPending(t, env.c)
	if v, err := env.c.Call(ctx, "E2E.sleep", 1); err != nil || v != true {
		t.Fatalf("sleep(1) = %v, %v", v, err)
	}
}
