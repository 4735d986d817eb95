package demo_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/demo"
	"github.com/gaterpc/gate/internal/gatetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hb = 500 * time.Millisecond

// start serves the demo service (no process pool) to a fresh broker and
// returns a client.
func start(t *testing.T) *gate.Client {
	t.Helper()
	h := gatetest.StartBrokerOn(t, gatetest.IPC, broker.WithHeartbeat(hb))
	svc, err := demo.NewService("", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWorker(h.Backend, gate.WithHeartbeat(hb), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Serve(context.Background()) }()
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(zctx), gate.WithHeartbeat(hb), gate.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		zctx.SetRetryAfterEINTR(false)
		zctx.Term()
		w.Close()
		<-done
	})
	ctx, cancel := context.WithTimeout(context.Background(), gatetest.TestTimeout)
	defer cancel()
	for {
		if _, err := c.Call(ctx, "demo.echo"); err == nil {
			return c
		} else if ctx.Err() != nil {
			t.Fatalf("demo never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMethods(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), gatetest.TestTimeout)
	defer cancel()
	blob, err := c.Call(ctx, "demo.blob", 1000)
	if err != nil {
		t.Fatal(err)
	}
	huge, err := c.Call(ctx, "demo.huge", 1000)
	if err != nil || !bytes.Equal(blob.([]byte), huge.([]byte)) {
		t.Fatalf("huge(1000) = %v, want the same bytes as blob(1000)", err)
	}
	if _, err := c.Call(ctx, "demo.huge", -1); gate.CodeOf(err) != gate.InvalidArgument {
		t.Fatalf("huge(-1) = %v, want InvalidArgument", err)
	}
	if _, err := c.Call(ctx, "demo.blob", demo.MaxBlob+1); gate.CodeOf(err) != gate.InvalidArgument {
		t.Fatalf("blob(MaxBlob+1) = %v, want InvalidArgument", err)
	}
	// Streamed from the generator, the bytes are those of one BlobSource
	// stream.
	big, err := c.Call(ctx, "demo.blob", 300000)
	want := make([]byte, 300000)
	_, _ = demo.NewBlobSource().Read(want)
	if err != nil || !bytes.Equal(big.([]byte), want) || !bytes.Equal(blob.([]byte), want[:1000]) {
		t.Fatalf("blob(300000) = %v, want the BlobSource stream", err)
	}
	got, err := c.Call(ctx, "demo.echo", "a", gate.Kwargs{"k": int64(1)})
	m, _ := got.(map[string]any)
	if err != nil || len(m["args"].([]any)) != 1 || m["kwargs"].(map[string]any)["k"] != int64(1) {
		t.Fatalf("echo = %v, %v", got, err)
	}
	ifs, err := c.Interfaces(ctx, "demo")
	for _, name := range []string{"echo", "sleep", "fail", "count", "blob", "huge", "cpu"} {
		if _, ok := ifs[name]; err != nil || !ok {
			t.Errorf("get_interfaces lacks %s (%v)", name, err)
		}
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

func TestTraffic(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var logs logBuf
	done := make(chan int)
	go func() {
		done <- demo.Traffic(ctx, c, "demo", 60, 5*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	if n := <-done; n < 40 { // every 40th is huge, every 5th a stream
		t.Errorf("Traffic at 60/s for 1.5s made %d calls, want about 90", n)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.b.Len() > 0 {
		t.Fatalf("traffic logged failures (fail's ValueError is expected and silent):\n%s", logs.b.String())
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Traffic returned before its ctx ended: %v", err)
	}
}
