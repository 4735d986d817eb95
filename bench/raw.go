package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/wire"
)

// The minimal gaterpc-wire peers around a gate-broker: a worker that
// answers echo(payload) with {"result": payload, "exception": nil} and a
// client that pipelines echo requests (docs/wire-protocol.md 2 and 3).

const rawService = "rawecho"

var (
	rawFunc    = []byte("\xa4echo") // msgpack "echo"
	rawKwargs  = []byte{0x80}       // msgpack {}
	rawResult  = []byte("\x82\xa6result")
	rawExcNone = []byte("\xa9exception\xc0")
)

// msgpackBin returns the msgpack bin encoding of p.
func msgpackBin(p []byte) []byte {
	var h []byte
	switch n := len(p); {
	case n < 1<<8:
		h = []byte{0xc4, byte(n)}
	case n < 1<<16:
		h = binary.BigEndian.AppendUint16([]byte{0xc5}, uint16(n))
	default:
		h = binary.BigEndian.AppendUint32([]byte{0xc6}, uint32(n))
	}
	return append(h, p...)
}

// runRawWorker registers rawService with a gate-broker's backend (READY,
// capacity 100000), answers HEARTBEATs and echoes each REQUEST's single
// argument as the result.
func runRawWorker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("raw-worker", flag.ContinueOnError)
	ep := fs.String("connect", "", "broker backend endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return err
	}
	defer term(zctx)
	s, err := newSocket(zctx, zmq.DEALER, 3000)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetIdentity(fmt.Sprintf("rawworker-%d", os.Getpid()))
	if err := s.Connect(*ep); err != nil {
		return err
	}
	readyMsg := wire.WorkerMessage{Command: wire.CmdReady, Service: rawService, Description: "raw echo", Capacity: 100000}.Frames()
	if _, err := s.SendMessage(readyMsg); err != nil {
		return err
	}
	ready("connected=" + *ep)
	hb := wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames()
	return serveLoop(ctx, s, func(msg [][]byte) [][]byte {
		m, err := wire.ParseWorkerMessage(msg)
		if err != nil {
			return nil
		}
		switch m.Command {
		case wire.CmdHeartbeat:
			return hb
		case wire.CmdDisconnect:
			return readyMsg
		case wire.CmdRequest:
			// args is msgpack [x]: the result is x, copied as is.
			if len(m.Body) < 2 || len(m.Body[1]) < 1 || m.Body[1][0] != 0x91 {
				return nil
			}
			x := m.Body[1][1:]
			res := make([]byte, 0, len(rawResult)+len(x)+len(rawExcNone))
			res = append(append(append(res, rawResult...), x...), rawExcNone...)
			return wire.WorkerMessage{Command: wire.CmdReply, Client: m.Client, RequestID: m.RequestID, Body: [][]byte{res}}.Frames()
		}
		return nil
	})
}

// runRawClient pipelines echo(payload) requests to rawService through a
// gate-broker's frontend; a reply counts when it is a success whose
// result is as long as the payload's encoding.
func runRawClient(ctx context.Context, args []string) error {
	cf, err := newClientFlags("raw-client", args, nil)
	if err != nil {
		return err
	}
	arg := msgpackBin(payload(cf.size))
	argsFrame := append([]byte{0x91}, arg...)
	want := len(rawResult) + len(arg) + len(rawExcNone)
	res, err := pipelineClient(ctx, cf, pipe{
		request: func(stamp []byte) [][]byte {
			return wire.ClientRequest{Service: rawService, RequestID: stamp, Body: [][]byte{rawFunc, argsFrame, rawKwargs}}.Frames()
		},
		reply: func(msg [][]byte) ([]byte, error) {
			r, err := wire.ParseClientReply(msg)
			if err != nil {
				return nil, err
			}
			if len(r.Body) != 1 || len(r.RequestID) != 8 || !bytes.HasSuffix(r.Body[0], rawExcNone) || len(r.Body[0]) != want {
				return nil, fmt.Errorf("%w: %q", errShort, truncate(r.Body))
			}
			return r.RequestID, nil
		},
	})
	if err != nil {
		return err
	}
	return printResult(res)
}

func truncate(body [][]byte) []byte {
	if len(body) == 0 {
		return nil
	}
	b := body[len(body)-1]
	if len(b) > 120 {
		b = b[:120]
	}
	return b
}
