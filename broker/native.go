package broker

import (
	"context"
	"time"

	"github.com/gaterpc/gate/internal/zmqx"
)

// DefaultNativeTrimInterval is the period at which cmd/gate-broker runs
// TrimNativeMemory.
const DefaultNativeTrimInterval = 10 * time.Second

// TrimNativeMemory returns the C heap's free memory to the operating
// system every interval until ctx is done (glibc's malloc_trim; it
// returns at once on other C libraries or when interval <= 0).
//
// libzmq allocates each connection's pipes and buffers from the C heap.
// After thousands of clients connect and leave, glibc keeps that freed
// memory, so a broker's RSS stays near its peak and creeps up with each
// wave of clients although the Go heap is small (docs/soak.md:
// 5,000 clients per cycle left 330 MB after five cycles; with the
// trimmer RSS falls back to ~30 MB within one interval). Run it next to
// Serve in processes that face many short-lived clients:
//
//	go broker.TrimNativeMemory(ctx, broker.DefaultNativeTrimInterval)
func TrimNativeMemory(ctx context.Context, interval time.Duration) {
	zmqx.RunTrimNative(ctx, interval)
}
