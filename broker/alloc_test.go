package broker_test

import (
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// TestForwardingNoAllocs checks the broker's steady state: calls relayed
// between a client and a worker that allocate nothing themselves (reused
// receive and send storage) cost the whole process less than one
// allocation per call on average. The broker itself allocates nothing per
// forwarded message; what is left is the runtime's and the broker's
// timers (heartbeats).
func TestForwardingNoAllocs(t *testing.T) {
	h := gatetest.StartBroker(t, broker.WithHeartbeat(time.Second))
	c := gatetest.Dial(t, h.Ctx, h.Frontend, gatetest.NewID("ac"))
	w := gatetest.Dial(t, h.Ctx, h.Backend, gatetest.NewID("aw"))
	w.Send(wire.WorkerMessage{Command: wire.CmdReady, Service: "Echo", Description: "echo", Capacity: 10}.Frames()...)
	gatetest.WaitFor(t, gatetest.TestTimeout, "worker", func() bool { return h.Broker.Stats().Workers == 1 })

	var crx, wrx zmqx.Receiver
	var tx zmqx.Sender
	var cp, wp zmqx.Poller
	if _, err := cp.AddSocket(c.Socket(), zmq.POLLIN); err != nil {
		t.Fatal(err)
	}
	if _, err := wp.AddSocket(w.Socket(), zmq.POLLIN); err != nil {
		t.Fatal(err)
	}
	req := wire.ClientRequest{Service: "Echo", RequestID: []byte("0000000000000001"),
		Body: [][]byte{[]byte("\xa4echo"), []byte("\x91\xa1a"), {0x80}}}.Frames()
	result := []byte("\x82\xa6result\xa1a\xa9exception\xc0")
	header, reply := []byte(wire.WorkerHeader), []byte{byte(wire.CmdReply)}
	out := make([][]byte, 0, 8)
	recv := func(p *zmqx.Poller, rx *zmqx.Receiver, s *zmq.Socket) [][]byte {
		for {
			m, err := rx.Recv(s, zmqx.Limits{})
			if err == nil {
				return m
			}
			if _, err := p.PollNow(gatetest.TestTimeout); err != nil || p.Ready(0) == 0 {
				t.Fatal("no message", err)
			}
		}
	}
	call := func() {
		if err := tx.Send(c.Socket(), req); err != nil {
			t.Fatal(err)
		}
		for {
			// [empty, MDPW01, command, client, empty, request id, body...]
			m := recv(&wp, &wrx, w.Socket())
			if len(m) >= 6 && len(m[2]) == 1 && m[2][0] == byte(wire.CmdRequest) {
				out = append(out[:0], nil, header, reply, m[3], nil, m[5], result)
				if err := tx.Send(w.Socket(), out); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		// [empty, MDPC01, service, request id, result]
		if m := recv(&cp, &crx, c.Socket()); len(m) != 5 || string(m[4]) != string(result) {
			t.Fatal("unexpected reply", len(m))
		}
	}
	for range 200 {
		call()
	}
	allocs := testing.AllocsPerRun(2000, call)
	t.Logf("%.3f allocations per call", allocs)
	if allocs >= 1 {
		t.Fatalf("%.2f allocations per call through the broker, want < 1", allocs)
	}
}
