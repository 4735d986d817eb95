package zmqx

/*
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
static int gate_malloc_trim(void) { return malloc_trim(0); }
static int gate_have_trim(void) { return 1; }
#else
static int gate_malloc_trim(void) { return 0; }
static int gate_have_trim(void) { return 0; }
#endif
*/
import "C"

import (
	"context"
	"time"
)

// CanTrimNative reports whether TrimNative does anything: the C library
// is glibc.
func CanTrimNative() bool { return C.gate_have_trim() != 0 }

// TrimNative returns the free memory of the C heap to the operating
// system (glibc's malloc_trim(0)) and reports whether any was released.
//
// libzmq allocates a pipe, an engine and their buffers per connection
// from the C heap; when thousands of peers connect and leave, glibc
// keeps the freed memory in its arenas (in holes below the top of the
// heap, which its own trimming never returns), so the process's RSS
// stays at its peak. It is safe to call from any goroutine; it takes
// each arena's lock while it walks the arena's free chunks.
func TrimNative() bool { return C.gate_malloc_trim() != 0 }

// RunTrimNative calls TrimNative every interval until ctx is done. It
// returns at once when the C library is not glibc or interval <= 0.
func RunTrimNative(ctx context.Context, interval time.Duration) {
	if interval <= 0 || !CanTrimNative() {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			TrimNative()
		}
	}
}
