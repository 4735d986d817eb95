package gate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gaterpc/gate/gate"
)

// wantAllInvalid checks that err wraps ErrInvalidOption and that each
// part of it (errors.Join) does, naming every want in order.
func wantAllInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, gate.ErrInvalidOption) {
		t.Fatalf("err = %v, want ErrInvalidOption", err)
	}
	var parts []error
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	for _, p := range parts {
		if !errors.Is(p, gate.ErrInvalidOption) {
			t.Errorf("part %q does not wrap ErrInvalidOption", p)
		}
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to mention %q", err, w)
		}
	}
}

// Every invalid option is reported, not only the first or the last.
func TestClientOptionsAllErrors(t *testing.T) {
	_, err := gate.NewClient("nowhere",
		gate.WithDefaultService("a:b"),
		gate.WithTimeout(-1),
		gate.WithRetry(gate.RetryPolicy{MaxAttempts: -1}),
		gate.WithLiveness(-2),
	)
	wantAllInvalid(t, err, `default service "a:b"`, "timeout -1ns", "MaxAttempts -1", "Liveness -2", `endpoint "nowhere"`)
}

func TestWorkerOptionsAllErrors(t *testing.T) {
	svc, err := gate.NewService("Opt", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.NewWorker("inproc://opt", gate.WithPoolSize(-1), gate.WithHeartbeat(-1), gate.WithMessageMax(-3))
	wantAllInvalid(t, err, "pool size -1", "Heartbeat -1ns", "MessageMax -3")
}

// A zero argument keeps the default: it is not an error.
func TestOptionsZeroKeepsDefault(t *testing.T) {
	c, err := gate.NewClient("inproc://zero", gate.WithTimeout(0), gate.WithDefaultService(""),
		gate.WithHeartbeat(0), gate.WithSettings(gate.Settings{}))
	if err != nil {
		t.Fatalf("NewClient with zero arguments = %v", err)
	}
	c.Close()
}

// A nil option of any type is skipped, including a nil CommonOption
// passed where a ClientOption or WorkerOption is expected.
func TestNilOptionsIgnored(t *testing.T) {
	var common gate.CommonOption
	c, err := gate.NewClient("inproc://nil-options", nil, common)
	if err != nil {
		t.Fatalf("NewClient with nil options = %v", err)
	}
	c.Close()
	svc, err := gate.NewService("NilOpt", "")
	if err != nil {
		t.Fatal(err)
	}
	var method gate.MethodOption
	if err := svc.Register("f", func(context.Context) error { return nil }, nil, method); err != nil {
		t.Fatalf("Register with nil options = %v", err)
	}
	w, err := svc.NewWorker("inproc://nil-options-w", nil, common)
	if err != nil {
		t.Fatalf("NewWorker with nil options = %v", err)
	}
	w.Close()
	var proc gate.ProcessOption
	p, err := gate.NewProcessPool(1, nil, proc)
	if err != nil {
		t.Fatalf("NewProcessPool with nil options = %v", err)
	}
	p.Close()
}
