package deploy

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testTimeout bounds every context in these tests.
const testTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
