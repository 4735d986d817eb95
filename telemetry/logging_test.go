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
	want := map[string]any{"level": "DEBUG", KeyRPCMethod: "Svc/echo", KeyRole: "worker", KeyDuration: 0.5,
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
}
