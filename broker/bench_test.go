package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

const benchInFlight = 64

var benchTransports = []gatetest.Transport{gatetest.Inproc, gatetest.IPC, gatetest.TCP}

// BenchmarkBrokerHop measures calls/s through the broker: client DEALER →
// broker → worker DEALER (echo) and back, with 64 requests in flight.
func BenchmarkBrokerHop(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.Name, func(b *testing.B) {
			h := gatetest.StartBrokerOn(b, tr, broker.WithHeartbeat(time.Second))
			stop := startEcho(b, h.Ctx, h.Backend, true)
			defer stop()
			c := gatetest.Dial(b, h.Ctx, h.Frontend, gatetest.NewID("bc"))
			// wait until the worker is registered
			gatetest.WaitFor(b, gatetest.TestTimeout, "echo worker", func() bool { return h.Broker.Stats().Workers == 1 })
			runClient(b, c, true, benchInFlight)
		})
	}
}

// BenchmarkBrokerHopSerial measures the latency of one call through the
// broker with a single request in flight: client → broker → worker →
// broker → client.
func BenchmarkBrokerHopSerial(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.Name, func(b *testing.B) {
			h := gatetest.StartBrokerOn(b, tr, broker.WithHeartbeat(time.Second))
			stop := startEcho(b, h.Ctx, h.Backend, true)
			defer stop()
			c := gatetest.Dial(b, h.Ctx, h.Frontend, gatetest.NewID("bc"))
			gatetest.WaitFor(b, gatetest.TestTimeout, "echo worker", func() bool { return h.Broker.Stats().Workers == 1 })
			runClient(b, c, true, 1)
		})
	}
}

// BenchmarkPingPong is the floor for the serial benchmark: a bare DEALER
// ping-pong between the client and an echo peer, with no broker.
func BenchmarkPingPong(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.Name, func(b *testing.B) {
			zctx, err := zmq.NewContext()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { zctx.Term() })
			ep, _ := tr.Endpoints(b)
			srv, err := zctx.NewSocket(zmq.ROUTER)
			if err != nil {
				b.Fatal(err)
			}
			zmqx.Setup(srv, 0, 0, nil)
			if err := srv.Bind(ep); err != nil {
				srv.Close()
				b.Fatal(err)
			}
			ep, _ = srv.GetLastEndpoint()
			var quit atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // owns srv
				defer wg.Done()
				defer srv.Close()
				poller := zmq.NewPoller()
				poller.Add(srv, zmq.POLLIN)
				for !quit.Load() {
					if _, err := poller.Poll(20 * time.Millisecond); err != nil {
						return
					}
					for {
						msg, err := srv.RecvMessageBytes(zmq.DONTWAIT)
						if err != nil {
							break
						}
						srv.SendMessage(msg)
					}
				}
			}()
			defer func() { quit.Store(true); wg.Wait() }()
			c := gatetest.Dial(b, zctx, ep, gatetest.NewID("pc"))
			runClient(b, c, false, 1)
		})
	}
}

// BenchmarkForwardingLoop is the baseline: a plain Go ROUTER↔ROUTER
// forwarding loop with the same batch draining and message I/O
// (zmqx.RecvMessage, zmqx.SendMessage) and no protocol logic, on the same
// sockets and peers as BenchmarkBrokerHop.
func BenchmarkForwardingLoop(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.Name, func(b *testing.B) {
			zctx, err := zmq.NewContext()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { zctx.Term() })
			fe, be := tr.Endpoints(b)
			fwd := startForwarder(b, zctx, fe, be)
			stop := startEcho(b, zctx, fwd.back, false)
			defer stop()
			c := gatetest.Dial(b, zctx, fwd.front, gatetest.NewID("bc"))
			gatetest.WaitFor(b, gatetest.TestTimeout, "echo worker", func() bool { return fwd.ready.Load() })
			runClient(b, c, false, benchInFlight)
		})
	}
}

// runClient keeps inflight requests outstanding until b.N replies came.
func runClient(b *testing.B, c *gatetest.RawPeer, proto bool, inflight int) {
	body := [][]byte{[]byte("\xa4echo"), []byte("\x91\xa1a"), {0x80}}
	send := func(i int) {
		req := wire.ClientRequest{Service: "Echo", RequestID: []byte(fmt.Sprintf("%016d", i)), Body: body}
		c.Send(req.Frames()...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	sent, got := 0, 0
	for ; sent < min(inflight, b.N); sent++ {
		send(sent)
	}
	for got < b.N {
		msg, err := c.Recv(gatetest.TestTimeout)
		if err != nil {
			b.Fatalf("after %d replies: %v", got, err)
		}
		if proto {
			if _, err := wire.ParseClientReply(msg); err != nil {
				b.Fatalf("reply %s: %v", gatetest.Dump(msg), err)
			}
		}
		got++
		if sent < b.N {
			send(sent)
			sent++
		}
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
	b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
	b.ReportMetric(float64(el.Microseconds())/float64(b.N), "µs/call")
}

// cpuTime is the CPU time (user + system) of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startEcho runs an echo worker on its own goroutine (which owns its
// socket). proto: speak MDPW01 (READY, REPLY, answer HEARTBEAT); else
// echo raw frames after a hello.
func startEcho(b *testing.B, zctx *zmq.Context, endpoint string, proto bool) (stop func()) {
	var quit atomic.Bool
	var wg sync.WaitGroup
	ready := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s, err := zctx.NewSocket(zmq.DEALER)
		if err != nil {
			ready <- err
			return
		}
		defer s.Close()
		zmqx.Setup(s, 0, 0, gatetest.NewID("bw"))
		if err := s.Connect(endpoint); err != nil {
			ready <- err
			return
		}
		if proto {
			_, err = s.SendMessage(wire.WorkerMessage{Command: wire.CmdReady, Service: "Echo", Description: "echo", Capacity: 100000}.Frames())
		} else {
			_, err = s.SendMessage("hello")
		}
		ready <- err
		result := []byte("\x82\xa6result\xa1a\xa9exception\xc0")
		poller := zmq.NewPoller()
		poller.Add(s, zmq.POLLIN)
		out := make([][]byte, 0, 8)
		for !quit.Load() {
			if _, err := poller.Poll(20 * time.Millisecond); err != nil {
				return
			}
			for range 256 {
				msg, err := s.RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				if !proto {
					s.SendMessage(msg)
					continue
				}
				m, err := wire.ParseWorkerMessage(msg)
				if err != nil {
					continue
				}
				switch m.Command {
				case wire.CmdHeartbeat:
					s.SendMessage(wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames())
				case wire.CmdRequest:
					out = append(out[:0], nil, []byte(wire.WorkerHeader), []byte{byte(wire.CmdReply)}, m.Client, nil, m.RequestID, result)
					s.SendMessage(out)
				}
			}
		}
	}()
	if err := <-ready; err != nil {
		b.Fatal(err)
	}
	return func() { quit.Store(true); wg.Wait() }
}

type forwarder struct {
	front, back string
	ready       atomic.Bool
}

// startForwarder runs the baseline loop: ROUTER↔ROUTER, batch draining,
// no parsing. The first backend message ("hello") names the worker.
func startForwarder(b *testing.B, zctx *zmq.Context, fe, be string) *forwarder {
	f := &forwarder{}
	var quit atomic.Bool
	var wg sync.WaitGroup
	bound := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		front, _ := zctx.NewSocket(zmq.ROUTER)
		back, _ := zctx.NewSocket(zmq.ROUTER)
		defer front.Close()
		defer back.Close()
		for _, s := range []*zmq.Socket{front, back} {
			zmqx.Setup(s, broker.DefaultHWM, 0, nil)
		}
		if err := errors.Join(front.Bind(fe), back.Bind(be)); err != nil {
			bound <- err
			return
		}
		f.front, _ = front.GetLastEndpoint()
		f.back, _ = back.GetLastEndpoint()
		bound <- nil
		var worker []byte
		poller := zmq.NewPoller()
		poller.Add(front, zmq.POLLIN)
		poller.Add(back, zmq.POLLIN)
		send := func(s *zmq.Socket, frames [][]byte) { _ = zmqx.SendMessage(s, frames) }
		out := make([][]byte, 0, 16)
		for !quit.Load() {
			polled, err := poller.Poll(20 * time.Millisecond)
			if err != nil {
				if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
					continue
				}
				return
			}
			for _, p := range polled {
				for range 256 {
					msg, err := zmqx.RecvMessage(p.Socket)
					if err != nil {
						break
					}
					if p.Socket == back {
						if worker == nil && len(msg) == 2 && bytes.Equal(msg[1], []byte("hello")) {
							worker = msg[0]
							f.ready.Store(true)
							continue
						}
						send(front, msg[1:])
						continue
					}
					if worker == nil {
						continue
					}
					out = append(append(out[:0], worker), msg...)
					send(back, out)
				}
			}
		}
	}()
	if err := <-bound; err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { quit.Store(true); wg.Wait() })
	return f
}
