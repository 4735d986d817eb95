package gate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/wire"
)

// A broker that vanishes (its connection drops without a word, as when it
// is killed) fails the calls in flight on it at once with ErrBrokerLost,
// not at the heartbeat liveness timeout (here 30 s, far beyond the test's
// bound).
func TestClientConnectionDropFailsCalls(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	_ = router.SetLinger(0)
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		router.Close()
		t.Fatal(err)
	}
	endpoint, _ := router.GetLastEndpoint()

	c, err := gate.NewClient(endpoint, gate.WithHeartbeat(10*time.Second), gate.WithLiveness(3), gate.WithLogger(clQuiet()))
	if err != nil {
		router.Close()
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "E2E.echo", 1); errc <- err }()

	// The fake broker takes the call (after the client's get_services),
	// then dies without answering.
	_ = router.SetRcvtimeo(10 * time.Second)
	for got := false; !got; {
		frames, err := router.RecvMessageBytes(0)
		if err != nil {
			router.Close()
			t.Fatalf("the call never reached the broker: %v", err)
		}
		req, err := wire.ParseClientRequest(frames[1:])
		got = err == nil && req.Service == "E2E"
	}
	router.Close()

	select {
	case err := <-errc:
		if !errors.Is(err, gate.ErrBrokerLost) || !strings.Contains(err.Error(), "dropped") {
			t.Fatalf("in-flight call = %v, want ErrBrokerLost for a dropped connection", err)
		}
	case <-ctx.Done():
		t.Fatal("the in-flight call was not failed when the connection dropped")
	}
}
