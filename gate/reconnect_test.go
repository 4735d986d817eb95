package gate_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// TestClientNoticesReturningBroker: after a long broker outage, during
// which the client's reconnect backoff grew to seconds, the client reaches
// the broker restarted on the same port within a few heartbeats: it keeps a
// socket connecting while it backs off, rather than waiting without one.
func TestClientNoticesReturningBroker(t *testing.T) {
	const hb = 50 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	front := "tcp://127.0.0.1:" + strconv.Itoa(port)
	fixed := gatetest.Transport{Name: "tcp-fixed", Endpoints: func(testing.TB) (string, string) {
		return front, "inproc://reconnect-back"
	}}

	h := gatetest.StartBrokerOn(t, fixed, broker.WithHeartbeat(hb))
	set := gate.DefaultSettings()
	set.ReconnectBackoff, set.ReconnectBackoffMax = 400*time.Millisecond, 4*time.Second
	c, err := gate.NewClient(front, gate.WithSettings(set), gate.WithHeartbeat(hb), gate.WithLiveness(3), gate.WithLogger(clQuiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := clCtx(t)
	if _, err := c.Call(ctx, "Nobody.echo"); !errors.Is(err, gate.ErrNoService) {
		t.Fatalf("Call = %v, want the broker's ErrNoService", err)
	}

	h.Broker.Close()
	time.Sleep(3 * time.Second) // several losses: the backoff is at seconds
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	b2, err := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend(front), broker.WithBackend("inproc://reconnect-back-2"),
		broker.WithHeartbeat(hb), broker.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b2.Serve(context.Background()) }()
	defer func() {
		b2.Close()
		<-served
	}()
	if _, _, err := b2.Addrs(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*hb)
		_, err := c.Call(cctx, "Nobody.echo")
		cancel()
		if errors.Is(err, gate.ErrNoService) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the client never reached the restarted broker: %v", err)
		}
	}
	d := time.Since(back)
	t.Logf("client reached the restarted broker after %v (%.1f heartbeats)", d.Round(time.Millisecond), float64(d)/float64(hb))
	// With the socket made only after the backoff (up to 4 s here) this
	// took seconds.
	if d > 20*hb {
		t.Errorf("client reached the restarted broker after %v, want within 20 heartbeats (%v)", d, 20*hb)
	}
}
