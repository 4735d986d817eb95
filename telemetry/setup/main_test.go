package setup

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

const testTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
