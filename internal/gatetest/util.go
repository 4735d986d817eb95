package gatetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

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

// NewZMQContext returns a ZeroMQ context terminated at cleanup: close
// every socket of it before (defer, or a Cleanup registered later).
func NewZMQContext(t testing.TB) *zmq.Context {
	t.Helper()
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatalf("gatetest: zmq context: %v", err)
	}
	t.Cleanup(func() {
		zctx.SetRetryAfterEINTR(false)
		if err := zctx.Term(); err != nil {
			t.Errorf("gatetest: zmq Term: %v", err)
		}
	})
	return zctx
}

// WaitLogRecord waits up to TestTimeout for a JSON log record in logs
// for which match holds and returns it, failing the test with the logs
// otherwise.
func WaitLogRecord(t testing.TB, logs *Buffer, what string, match func(rec map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(TestTimeout)
	for {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && match(rec) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatetest: no %s log record; logs:\n%s", what, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
