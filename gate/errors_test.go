package gate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gaterpc/gate/gate"
)

// ExampleError_Is tests a remote exception against gate's sentinels: the
// broker's "no such service" reply matches ErrNoService, however deeply it
// is wrapped.
func ExampleError_Is() {
	// What Client.Call returns for a service no worker serves.
	remote := gate.NewException("ServiceUnAvailableError", "The Nope Service unavailable.")
	err := fmt.Errorf("calling Nope.x: %w", remote)

	fmt.Println(errors.Is(err, gate.ErrNoService))
	fmt.Println(errors.Is(err, gate.ErrTimeout))
	var ge *gate.Error
	if errors.As(err, &ge) {
		fmt.Println(ge.Code, ge.Class)
	}
	// Output:
	// true
	// false
	// UNAVAILABLE ServiceUnAvailableError
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		class  string
		target error
		want   bool
	}{
		{"ServiceUnAvailableError", gate.ErrNoService, true},
		{"TimeoutError", gate.ErrTimeout, true},
		{"TimeoutError", gate.ErrNoService, false},
		{"ServiceUnAvailableError", gate.ErrTimeout, false},
		{"WorkerLostError", gate.ErrNoService, false},
		{"BusyWorkerError", gate.ErrNoService, false},
		{"ValueError", gate.ErrTimeout, false},
		{"TimeoutError", context.DeadlineExceeded, false},
		{"ServiceUnAvailableError", gate.ErrClosed, false},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", gate.NewException(tt.class, "x"))
		if got := errors.Is(err, tt.target); got != tt.want {
			t.Errorf("errors.Is(%s, %v) = %v, want %v", tt.class, tt.target, got, tt.want)
		}
	}
}
