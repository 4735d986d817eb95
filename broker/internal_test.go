package broker_test

import (
	"bytes"
	"testing"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/wire/wiretest"
)

const vectorsPath = "../internal/wire/testdata/vectors.txt"

// TestInternalServiceVectors replays the captured client requests to the
// internal Gate service and compares the broker's reply bodies with the
// ones gaterpc 0.2.12 sent.
func TestInternalServiceVectors(t *testing.T) {
	vs := wiretest.Load(t, vectorsPath)
	brokerID := vs.Get(t, "LIVE_INTERNAL_INFO_M02_B2C_F5")[17 : 17+16]
	tests := []struct {
		seq      string
		services []string // registered before the call, in order
	}{
		{"CONNECT", []string{"GateRPC"}},
		{"INTERNAL_INFO", []string{"GateRPC"}},
		{"INTERNAL_QUERY_SERVICE", []string{"GateRPC"}},
		{"INTERNAL_QUERY_SERVICE_VIA_CLIENT_HELPER_DOUBLE_PACKED", []string{"GateRPC"}},
		{"INTERNAL_KEEPALIVE", nil},
		{"INTERNAL_KEEPALIVE_STR_ARG", nil},
		{"RAW_CLIENT_BAD_FRAMES", []string{"GateRPC", "Raw", "Raw2", "Busy"}},
	}
	for _, tc := range tests {
		t.Run(tc.seq, func(t *testing.T) {
			h := gatetest.StartBroker(t, broker.WithID(brokerID))
			for _, s := range tc.services {
				w := h.RawWorker(t)
				desc := "desc"
				if s == "GateRPC" {
					desc = "gate-rpc service"
				}
				w.Ready(s, desc, 1)
				w.MustRecv(recvTimeout) // HEARTBEAT: registered
			}
			var req, rep [][]byte
			for _, m := range vs.Messages() {
				if m.Seq != tc.seq {
					continue
				}
				switch m.Leg {
				case "C2B", "RC2B":
					if req == nil {
						req = m.Frames
					}
				case "B2C":
					if rep == nil {
						rep = m.Frames
					}
				}
			}
			if req == nil || rep == nil {
				t.Fatalf("sequence %s not found in vectors", tc.seq)
			}
			c := h.RawClient(t)
			c.Send(req...)
			got := c.MustRecv(recvTimeout)
			want := rep[1:] // drop the routing id (consumed by ZeroMQ)
			if len(got) != len(want) {
				t.Fatalf("reply %s, want %s", gatetest.Dump(got), gatetest.Dump(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("reply frame %d = %x, want %x", i, got[i], want[i])
				}
			}
		})
	}
}

func TestInternalServiceErrors(t *testing.T) {
	h := gatetest.StartBroker(t)
	c := h.RawClient(t)
	tests := []struct {
		name  string
		body  [][]byte
		class string
		repr  string
	}{
		{"unknown function", call(t, "no_such_function"), "AttributeError", "AttributeError('Function not found: no_such_function')"},
		{"no body", nil, "TypeError", ""},
		{"four frames", append(call(t, "info"), []byte{0x90}), "TypeError", ""},
		{"func not str", [][]byte{{0x01}}, "TypeError", ""},
		{"args not array", [][]byte{mp(t, "keepalive"), {0x80}}, "TypeError", ""},
		{"keepalive arity", call(t, "keepalive"), "TypeError", ""},
		{"query_service arity", call(t, "query_service", "a", "b"), "TypeError", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.Request(wire.InternalService, rid(i), tc.body...)
			rep := c.NextReply(recvTimeout)
			if rep.Service != "Gate" || !bytes.Equal(rep.RequestID, rid(i)) {
				t.Fatalf("reply %+v", rep)
			}
			wantException(t, rep, tc.class, tc.repr)
		})
	}
	// func-only body works (1 frame): get_services with no args
	c.Request(wire.InternalService, rid(99), mp(t, "get_services"))
	rep := c.NextReply(recvTimeout)
	if !bytes.Equal(rep.Body[0], result(t, []string{"Gate"})) {
		t.Fatalf("get_services = %x", rep.Body[0])
	}
	if st := stats(h); st.ClientKeepalives != 0 {
		t.Fatalf("keepalives %d", st.ClientKeepalives)
	}
}
