package codec

import (
	"errors"
	"testing"
)

// New reports every invalid option, each wrapping ErrInvalidOption.
func TestNewReportsAllInvalidOptions(t *testing.T) {
	_, err := New(MaxStrLen(0), MaxDepth(-1), WithExtDecoder(5, nil))
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 3 {
		t.Fatalf("New = %v, want three errors joined", err)
	}
	for _, p := range j.Unwrap() {
		if !errors.Is(p, ErrInvalidOption) {
			t.Errorf("%q does not wrap ErrInvalidOption", p)
		}
	}
}
