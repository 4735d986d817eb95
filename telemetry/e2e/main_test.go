package e2e

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/gaterpc/gate/gate"
)

func TestMain(m *testing.M) {
	if gate.RunChildIfRequested() {
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
