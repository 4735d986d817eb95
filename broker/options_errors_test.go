package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
)

// New reports every invalid option, each wrapping gate.ErrInvalidOption.
func TestNewReportsAllInvalidOptions(t *testing.T) {
	_, err := broker.New(broker.WithHeartbeat(-1), broker.WithLiveness(-2), broker.WithQueueLimit(-3),
		broker.WithFrontend("tcp://127.0.0.1:7"), broker.WithBackend("tcp://127.0.0.1:7"))
	if !errors.Is(err, gate.ErrInvalidOption) {
		t.Fatalf("New = %v, want ErrInvalidOption", err)
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 4 {
		t.Fatalf("New = %v, want the four problems joined", err)
	}
	for _, p := range j.Unwrap() {
		if !errors.Is(p, gate.ErrInvalidOption) {
			t.Errorf("%q does not wrap ErrInvalidOption", p)
		}
	}
	for _, w := range []string{"heartbeat -1ns", "liveness -2", "queue limit -3", "both"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New = %v, want it to mention %q", err, w)
		}
	}
}
