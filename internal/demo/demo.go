// Package demo is the demo service run by cmd/gate-demo-worker and
// embedded by `gatectl demo`: a handful of methods that exercise every
// kind of reply (see NewService for the list; huge and blob are the same
// method under two names).
//
//	pool, _ := gate.NewProcessPool(2)
//	svc, _ := demo.NewService("demo", pool)
//	w, _ := svc.NewWorker("tcp://127.0.0.1:5556")
//	go w.Serve(ctx)
//
// Binaries that pass a ProcessPool must call gate.RunChildIfRequested
// first thing in main.
package demo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"iter"
	"time"

	"github.com/gaterpc/gate/gate"
)

// DefaultName is the demo service's default name.
const DefaultName = "demo"

// MaxBlob is the largest size blob accepts: 1 GiB. The bytes are
// generated while they are sent (gate.HugeBinary), so the worker never
// holds the value; a client receiving more than its HugeDataMaxSize
// (default 256 MiB) must raise it.
const MaxBlob = 1 << 30

// CPU is the process-pool function behind the cpu method: it hashes a
// 32-byte block n times with SHA-256 and returns the hex digest.
var CPU = gate.MustProcessFunc("demo.cpu", cpu)

func cpu(ctx context.Context, n int) (string, error) {
	if n < 0 || n > 100_000_000 {
		return "", gate.Errorf(gate.InvalidArgument, "cpu(n): n must be in [0, 1e8], got %d", n)
	}
	var sum [32]byte
	for i := 0; i < n; i++ {
		if i%65536 == 0 && ctx.Err() != nil {
			return "", ctx.Err()
		}
		sum = sha256.Sum256(sum[:])
	}
	return fmt.Sprintf("%x", sum), nil
}

// NewService returns the demo service named name (DefaultName if empty):
//
//	echo(*args, **kwargs)  -> {"args": [...], "kwargs": {...}}
//	sleep(seconds)         -> seconds, after sleeping (ends early with the caller's deadline)
//	fail(message)          -> raises ValueError(message)
//	count(n)               -> stream of 0..n-1
//	blob(size)             -> HugeData of size pseudo-random bytes, 0..MaxBlob
//	huge(size)             -> the same as blob (the name the dashboards and docs use)
//	cpu(n)                 -> SHA-256 chain of length n, on pool (or the worker's goroutine pool if nil)
func NewService(name string, pool *gate.ProcessPool) (*gate.Service, error) {
	if name == "" {
		name = DefaultName
	}
	svc, err := gate.NewService(name, "gate demo service")
	if err != nil {
		return nil, err
	}
	var cpuOpts []gate.MethodOption
	cpuFn := any(cpu)
	if pool != nil {
		cpuFn, cpuOpts = CPU, append(cpuOpts, gate.WithExecutor(pool))
	}
	for _, r := range []struct {
		name string
		fn   any
		doc  string
		opts []gate.MethodOption
	}{
		{"echo", echo, "Return the positional and keyword arguments.", []gate.MethodOption{gate.WithExecutor(gate.Inline)}},
		{"sleep", sleep, "Sleep for the given seconds (float), then return them.", []gate.MethodOption{gate.WithParams("seconds")}},
		{"fail", fail, "Raise ValueError(message).", []gate.MethodOption{gate.WithParams("message")}},
		{"count", count, "Stream the integers 0..n-1.", []gate.MethodOption{gate.WithParams("n")}},
		{"blob", blob, "Return size pseudo-random bytes (0..1 GiB) as HugeData.", []gate.MethodOption{gate.WithParams("size")}},
		{"huge", blob, "Return size pseudo-random bytes (0..1 GiB) as HugeData (alias of blob).", []gate.MethodOption{gate.WithParams("size")}},
		{"cpu", cpuFn, "Burn CPU: a SHA-256 chain of length n (runs on the process pool).", append(cpuOpts, gate.WithParams("n"))},
	} {
		if err := svc.Register(r.name, r.fn, append([]gate.MethodOption{gate.WithDoc(r.doc)}, r.opts...)...); err != nil {
			return nil, err
		}
	}
	return svc, nil
}

func echo(_ context.Context, kw gate.Kwargs, args ...any) (map[string]any, error) {
	if args == nil {
		args = []any{}
	}
	if kw == nil {
		kw = gate.Kwargs{}
	}
	return map[string]any{"args": args, "kwargs": map[string]any(kw)}, nil
}

func sleep(ctx context.Context, seconds float64) (float64, error) {
	if seconds < 0 || seconds > 3600 {
		return 0, gate.Errorf(gate.InvalidArgument, "sleep(seconds): want 0..3600, got %v", seconds)
	}
	t := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return seconds, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func fail(_ context.Context, message string) error {
	return gate.NewException("ValueError", message)
}

func count(ctx context.Context, n int) (iter.Seq[int], error) {
	if n < 0 {
		return nil, gate.Errorf(gate.InvalidArgument, "count(n): n must be >= 0, got %d", n)
	}
	return func(yield func(int) bool) {
		for i := 0; i < n && ctx.Err() == nil; i++ {
			if !yield(i) {
				return
			}
		}
	}, nil
}

func blob(_ context.Context, size int) (gate.HugeValue, error) {
	if size < 0 || size > MaxBlob {
		return gate.HugeValue{}, gate.Errorf(gate.InvalidArgument, "blob(size): want 0..1GiB, got %d", size)
	}
	return gate.HugeBinary(int64(size), NewBlobSource()), nil
}
