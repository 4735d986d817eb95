package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

const recvTimeout = gatetest.RecvTimeout

// mp, call and result build msgpack bytes (see gatetest.Pack, CallBody,
// ResultBody).
var (
	mp     = gatetest.Pack
	call   = gatetest.CallBody
	result = gatetest.ResultBody
)

// exception decodes a single reply body and returns its class and repr
// ("" if it is not an exception reply).
func exception(t testing.TB, body [][]byte) (class, repr string) {
	t.Helper()
	if len(body) != 1 {
		t.Fatalf("reply body has %d frames, want 1", len(body))
	}
	var m map[string]any
	if err := msgpack.Unmarshal(body[0], &m); err != nil {
		t.Fatalf("reply body %x: %v", body[0], err)
	}
	exc, _ := m["exception"].([]any)
	if len(exc) != 3 {
		return "", ""
	}
	c, _ := exc[0].(string)
	r, _ := exc[1].(string)
	return c, r
}

func wantException(t testing.TB, rep wire.ClientReply, class, repr string) {
	t.Helper()
	c, r := exception(t, rep.Body)
	if c != class || (repr != "" && r != repr) {
		t.Fatalf("reply exception = (%q, %q), want (%q, %q)", c, r, class, repr)
	}
}

func rid(i int) []byte { return []byte(fmt.Sprintf("rid-%04d", i)) }

// readyWorker connects a worker, sends READY and waits until the broker
// has registered it.
func readyWorker(t testing.TB, h *gatetest.Harness, service string, capacity int) *gatetest.RawWorker {
	t.Helper()
	w := h.RawWorker(t)
	w.Ready(service, service+" service", capacity)
	msg := w.MustRecv(recvTimeout) // the immediate HEARTBEAT (quirk 9)
	m, err := wire.ParseWorkerMessage(msg)
	if err != nil || m.Command != wire.CmdHeartbeat {
		t.Fatalf("after READY got %s (%v), want HEARTBEAT", gatetest.Dump(msg), err)
	}
	w.Heartbeat()
	return w
}

func stats(h *gatetest.Harness) broker.Stats { return h.Broker.Stats() }

func serviceStats(t testing.TB, h *gatetest.Harness, name string) broker.ServiceStats {
	t.Helper()
	for _, s := range stats(h).Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in stats", name)
	return broker.ServiceStats{}
}

func waitStats(t testing.TB, h *gatetest.Harness, what string, cond func(broker.Stats) bool) broker.Stats {
	t.Helper()
	var st broker.Stats
	gatetest.WaitFor(t, recvTimeout, what, func() bool {
		st = stats(h)
		return cond(st)
	})
	return st
}

func since(start time.Time) time.Duration { return time.Since(start) }
