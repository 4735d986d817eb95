package gatetest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/gaterpc/gate/gate"
)

// Buffer is a bytes.Buffer safe for one writer goroutine (a logger, a
// command's output) and a reader goroutine (the test).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gatetest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePortString is FreePort as a decimal string.
func FreePortString(t testing.TB) string {
	t.Helper()
	return strconv.Itoa(FreePort(t))
}

// MustGet fetches u with HTTPClient within TestTimeout and returns the
// status and body, failing the test when the request fails.
func MustGet(t testing.TB, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), TestTimeout)
	defer cancel()
	code, body, err := HTTPGet(ctx, u)
	if err != nil {
		t.Fatalf("gatetest: GET %s: %v", u, err)
	}
	return code, string(body)
}

// Discard returns a logger that writes nothing.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ServeWorker runs w.Serve until cleanup, when it closes w and checks
// that Serve returned gate.ErrClosed.
func ServeWorker(t testing.TB, w *gate.Worker) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = w.Close()
		if err := <-errc; !errors.Is(err, gate.ErrClosed) {
			t.Errorf("gatetest: worker Serve = %v, want gate.ErrClosed", err)
		}
	})
}
