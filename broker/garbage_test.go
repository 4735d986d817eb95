package broker_test

import (
	"bytes"
	"testing"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// TestGarbageDropped feeds malformed messages to both sockets and checks
// that each is dropped and counted by reason, that nothing is answered,
// and that an unrelated request is still served.
func TestGarbageDropped(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	e := []byte{}
	big := bytes.Repeat([]byte{'x'}, 600)
	front := []struct {
		name   string
		frames [][]byte
		reason string
	}{
		{"no delimiter", [][]byte{b("x"), b("MDPC01"), b("S"), b("r")}, "delimiter"},
		{"bad header", [][]byte{e, b("MDPC02"), b("Gate"), b("r"), b("x")}, "header"},
		{"header only", [][]byte{e, b("MDPC01")}, "too_few_frames"},
		{"no request id", [][]byte{e, b("MDPC01"), b("S")}, "too_few_frames"},
		{"empty service", [][]byte{e, b("MDPC01"), e, b("r")}, "service"},
		{"delimiter only", [][]byte{e}, "too_few_frames"},
		{"worker header", [][]byte{e, b("MDPW01"), {0x01}, b("S:d:1")}, "header"},
		{"oversize", [][]byte{e, b("MDPC01"), b("S"), b("r"), big, big}, "oversize"},
	}
	back := []struct {
		name   string
		frames [][]byte
		reason string
	}{
		{"no command", [][]byte{e, b("MDPW01")}, "command"},
		{"unknown command", [][]byte{e, b("MDPW01"), {0x09}}, "command"},
		{"multi-byte command", [][]byte{e, b("MDPW01"), {0x03, 0x04}}, "command"},
		{"bad header", [][]byte{e, b("MDPW02"), {0x01}, b("S:d:1")}, "header"},
		{"no delimiter", [][]byte{b("x"), b("MDPW01"), {0x04}}, "delimiter"},
		{"ready no colon", [][]byte{e, b("MDPW01"), {0x01}, b("nocolon")}, "ready"},
		{"ready bad capacity", [][]byte{e, b("MDPW01"), {0x01}, b("S:d:lots")}, "ready"},
		{"ready no field", [][]byte{e, b("MDPW01"), {0x01}}, "ready"},
		{"request from worker", [][]byte{e, b("MDPW01"), {0x02}, b("c"), e, b("r"), b("x")}, "command"},
		{"cancel from worker", [][]byte{e, b("MDPW01"), {0x06}, b("c"), e, b("r")}, "command"},
		{"heartbeat extra frames", [][]byte{e, b("MDPW01"), {0x04}, b("a"), b("b")}, "unexpected_frames"},
		{"reply bad delimiter", [][]byte{e, b("MDPW01"), {0x03}, b("c"), b("x"), b("r"), b("y")}, "delimiter"},
		{"reply no body", [][]byte{e, b("MDPW01"), {0x03}, b("c"), e, b("r")}, "body"},
		{"oversize", [][]byte{e, b("MDPW01"), {0x03}, b("c"), e, b("r"), big, big}, "oversize"},
	}
	for _, tr := range gatetest.Endpoints(t) {
		t.Run(tr.Name, func(t *testing.T) {
			h := gatetest.StartBrokerOn(t, tr, broker.WithMaxMsgSize(1024))
			w := readyWorker(t, h, "S", 4)
			bad := h.RawClient(t)
			want := map[string]uint64{}
			for _, tc := range front {
				bad.Send(tc.frames...)
				want["frontend/"+tc.reason]++
			}
			// garbage from the registered worker's own socket
			for _, tc := range back {
				w.Send(tc.frames...)
				want["backend/"+tc.reason]++
			}
			waitStats(t, h, "all drops counted", func(st broker.Stats) bool {
				var n, m uint64
				for _, v := range st.Drops {
					n += v
				}
				for _, v := range want {
					m += v
				}
				return n >= m
			})
			st := stats(h)
			for k, v := range want {
				if st.Drops[k] != v {
					t.Errorf("Drops[%q] = %d, want %d (all: %v)", k, st.Drops[k], v, st.Drops)
				}
			}
			bad.Sync() // no garbage was answered
			if st.Workers != 1 {
				t.Fatalf("workers = %d after garbage, want 1", st.Workers)
			}
			h.Served(t, w, "S") // an unrelated request is still served by the same worker
			_ = wire.CmdReady
		})
	}
}
