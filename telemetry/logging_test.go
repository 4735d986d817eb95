package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/gaterpc/gate/gate"
)

func TestLoggingMiddleware(t *testing.T) {
	ctx := testCtx(t)
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &fakeClock{t: time.Unix(0, 0), step: 500 * time.Millisecond}
	mw := Logging(l, withClock(clk.now))
	call(t, ctx, mw, gate.RoleWorker, "Svc", "echo", nil, nil, gate.Errorf(gate.Internal, "crash"))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	want := map[string]any{"level": "WARN", KeyRPCMethod: "Svc/echo", KeyRole: "worker", KeyDuration: 0.5,
		KeyStatusCode: "INTERNAL", KeyErrorType: "INTERNAL", KeyRequestID: ""}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}

	buf.Reset()
	quiet := slog.New(slog.NewJSONHandler(&buf, nil))
	call(t, ctx, Logging(quiet), gate.RoleWorker, "Svc", "echo", nil, nil, nil)
	if buf.Len() != 0 {
		t.Errorf("logged at Info level: %q", buf.String())
	}
	// At Info, a caller fault is not logged; a server fault is, at Warn.
	call(t, ctx, Logging(quiet), gate.RoleWorker, "Svc", "echo", nil, nil, gate.Errorf(gate.InvalidArgument, "bad"))
	if buf.Len() != 0 {
		t.Errorf("caller fault logged at Info level: %q", buf.String())
	}
	call(t, ctx, Logging(quiet), gate.RoleClient, "Svc", "echo", nil, nil, gate.Errorf(gate.Unavailable, "worker lost"))
	m = nil
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if m["level"] != "WARN" || m[KeyStatusCode] != "UNAVAILABLE" || m[KeyRPCMethod] != "Svc/echo" || m[KeyErrorDetail] == nil {
		t.Errorf("server fault at Info level = %v, want one WARN record", m)
	}
}
