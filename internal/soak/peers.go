package soak

import (
	"context"
	"crypto/rand"
	"fmt"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/wire"
)

// PeersConfig describes raw peers opened from one process: idle workers
// that register and heartbeat, and idle clients that send a
// Gate.keepalive each heartbeat interval.
type PeersConfig struct {
	Frontend, Backend string
	Workers, Clients  int
	Service           string        // the workers' service ["idle"]
	Heartbeat         time.Duration // [5s]
}

// keepaliveBody is Gate.keepalive() as msgpack frames: "keepalive", [], {}.
var keepaliveBody = [][]byte{append([]byte{0xa9}, "keepalive"...), {0x90}, {0x80}}

// echoBody is demo.echo(1) as msgpack frames: "echo", [1], {}.
var echoBody = [][]byte{append([]byte{0xa4}, "echo"...), {0x91, 0x01}, {0x80}}

func newContext(sockets int) (*zmq.Context, error) {
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	if err := zctx.SetMaxSockets(sockets + 64); err != nil {
		zctx.Term()
		return nil, err
	}
	return zctx, nil
}

func dealer(zctx *zmq.Context, endpoint string) (*zmq.Socket, error) {
	s, err := zctx.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	if err := s.SetLinger(0); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Connect(endpoint); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// RunPeers opens the peers and keeps them alive until ctx ends. ready is
// called once every worker got its first HEARTBEAT and every client its
// first keepalive reply. One goroutine (the caller's) owns every socket.
func RunPeers(ctx context.Context, cfg PeersConfig, onReady func()) error {
	if cfg.Service == "" {
		cfg.Service = "idle"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	zctx, err := newContext(cfg.Workers + cfg.Clients)
	if err != nil {
		return err
	}
	defer zctx.Term()
	n := cfg.Workers + cfg.Clients
	socks := make([]*zmq.Socket, 0, n)
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	poller := zmq.NewPoller()
	ready1 := make([]bool, n)
	next := make([]time.Time, n) // when each peer speaks next
	now := time.Now()
	var nready int
	ready := func(i int) {
		if !ready1[i] {
			ready1[i] = true
			nready++
			if nready == n && onReady != nil {
				onReady()
			}
		}
	}
	send := func(i int) error {
		s := socks[i]
		var frames [][]byte
		if i < cfg.Workers {
			frames = wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames()
		} else {
			frames = wire.ClientRequest{Service: wire.InternalService, RequestID: id(), Body: keepaliveBody}.Frames()
		}
		_, err := s.SendMessageDontwait(frames)
		if err == zmq.Errno(syscall.EAGAIN) {
			return nil
		}
		return err
	}
	readyMsg := func(i int) error {
		_, err := socks[i].SendMessageDontwait(wire.WorkerMessage{Command: wire.CmdReady, Service: cfg.Service,
			Description: "idle worker", Capacity: 1}.Frames())
		if err == zmq.Errno(syscall.EAGAIN) {
			return nil
		}
		return err
	}
	for i := range n {
		ep := cfg.Frontend
		if i < cfg.Workers {
			ep = cfg.Backend
		}
		s, err := dealer(zctx, ep)
		if err != nil {
			return fmt.Errorf("peer %d of %d: %w", i, n, err)
		}
		socks = append(socks, s)
		poller.Add(s, zmq.POLLIN)
		if i < cfg.Workers {
			if err := readyMsg(i); err != nil {
				return err
			}
		} else if err := send(i); err != nil {
			return err
		}
		// Spread the peers' messages over the interval.
		next[i] = now.Add(cfg.Heartbeat * time.Duration(i+1) / time.Duration(n))
	}
	for ctx.Err() == nil {
		polled, err := poller.PollAll(100 * time.Millisecond)
		if err != nil {
			if err == zmq.Errno(syscall.EINTR) {
				continue
			}
			return err
		}
		for i, p := range polled {
			if p.Events&zmq.POLLIN == 0 {
				continue
			}
			for {
				msg, err := socks[i].RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				if i >= cfg.Workers {
					ready(i)
					continue
				}
				m, err := wire.ParseWorkerMessage(msg)
				if err != nil {
					continue
				}
				switch m.Command {
				case wire.CmdHeartbeat:
					ready(i)
				case wire.CmdDisconnect:
					if err := readyMsg(i); err != nil {
						return err
					}
				}
			}
		}
		now := time.Now()
		for i := range n {
			if now.After(next[i]) {
				if err := send(i); err != nil {
					return err
				}
				next[i] = next[i].Add(cfg.Heartbeat)
			}
		}
	}
	return nil
}

func id() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}
