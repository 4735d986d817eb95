package wire

import (
	"errors"
	"testing"
)

func TestParseReadyText(t *testing.T) {
	tests := []struct {
		name, in, svc, desc string
		capacity            int
		wantErr             bool
	}{
		{name: "default", in: "GateRPC:gate-rpc service:5000", svc: "GateRPC", desc: "gate-rpc service", capacity: 5000},
		{name: "colon in description", in: "S:a:b:7", svc: "S", desc: "a:b", capacity: 7},
		{name: "empty description", in: "S::0", svc: "S", capacity: 0},
		{name: "spaces around capacity", in: "S:d: 3 ", svc: "S", desc: "d", capacity: 3},
		{name: "two parts", in: "S:5000", wantErr: true},
		{name: "no separator", in: "S", wantErr: true},
		{name: "empty service", in: ":d:1", wantErr: true},
		{name: "negative capacity", in: "S:d:-1", wantErr: true},
		{name: "non-numeric capacity", in: "S:d:x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, desc, capacity, err := ParseReadyText(tt.in)
			if tt.wantErr {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Reason != ReasonReady {
					t.Fatalf("ParseReadyText(%q) err = %v, want ready ProtocolError", tt.in, err)
				}
				return
			}
			if err != nil || svc != tt.svc || desc != tt.desc || capacity != tt.capacity {
				t.Fatalf("ParseReadyText(%q) = %q, %q, %d, %v", tt.in, svc, desc, capacity, err)
			}
		})
	}
}

func TestExtensionFrames(t *testing.T) {
	cancel := WorkerMessage{Command: CmdCancel, Client: []byte("cid"), RequestID: []byte("rid")}.Frames()
	want := [][]byte{{}, []byte("MDPW01"), {0x06}, []byte("cid"), {}, []byte("rid")}
	if !framesEqual(cancel, want) {
		t.Fatalf("CANCEL frames %s, want %s", fmtFrames(cancel), fmtFrames(want))
	}
	m, err := ParseWorkerMessage(cancel)
	if err != nil || m.Command != CmdCancel || string(m.Client) != "cid" || string(m.RequestID) != "rid" || m.Body != nil {
		t.Fatalf("ParseWorkerMessage(CANCEL) = %+v, %v", m, err)
	}
	if _, err := ParseWorkerMessage(append(cancel, []byte("x"))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("CANCEL with a body frame: err = %v", err)
	}
	hb := WorkerMessage{Command: CmdHeartbeat, Extra: [][]byte{[]byte(GateCapability)}}.Frames()
	want = [][]byte{{}, []byte("MDPW01"), {0x04}, []byte("gaterpc/1")}
	if !framesEqual(hb, want) {
		t.Fatalf("capability HEARTBEAT %s, want %s", fmtFrames(hb), fmtFrames(want))
	}
	if m, err := ParseWorkerMessage(hb); err != nil || len(m.Extra) != 1 || string(m.Extra[0]) != GateCapability {
		t.Fatalf("ParseWorkerMessage(HEARTBEAT) = %+v, %v", m, err)
	}
}

func TestParseRejects(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name   string
		parse  func([][]byte) error
		frames [][]byte
		reason string
	}{
		{"request delimiter", reqErr, [][]byte{b("x"), b("MDPC01"), b("S"), b("r")}, ReasonDelimiter},
		{"request header", reqErr, [][]byte{{}, b("MDPC02"), b("S"), b("r")}, ReasonHeader},
		{"request no id", reqErr, [][]byte{{}, b("MDPC01"), b("S")}, ReasonTooFewFrames},
		{"request empty service", reqErr, [][]byte{{}, b("MDPC01"), {}, b("r")}, ReasonService},
		{"reply no body", repErr, [][]byte{{}, b("MDPC01"), b("S"), b("r")}, ReasonBody},
		{"worker header", wkErr, [][]byte{{}, b("MDPC01"), {1}, b("S:d:1")}, ReasonHeader},
		{"worker command", wkErr, [][]byte{{}, b("MDPW01"), {9}}, ReasonCommand},
		{"worker two-byte command", wkErr, [][]byte{{}, b("MDPW01"), {1, 1}}, ReasonCommand},
		{"ready two frames", wkErr, [][]byte{{}, b("MDPW01"), {1}, b("S:d:1"), b("x")}, ReasonReady},
		{"request empty client", wkErr, [][]byte{{}, b("MDPW01"), {2}, {}, {}, b("r")}, ReasonRoutingID},
		{"request bad delimiter", wkErr, [][]byte{{}, b("MDPW01"), {2}, b("c"), b("x"), b("r")}, ReasonDelimiter},
		{"reply without body", wkErr, [][]byte{{}, b("MDPW01"), {3}, b("c"), {}, b("r")}, ReasonBody},
		{"heartbeat two extras", wkErr, [][]byte{{}, b("MDPW01"), {4}, b("a"), b("b")}, ReasonUnexpectedData},
		{"routing", func(f [][]byte) error { _, _, err := SplitRouting(f); return err }, [][]byte{{}}, ReasonRoutingID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.frames)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Reason != tt.reason {
				t.Fatalf("err = %v, want reason %s", err, tt.reason)
			}
		})
	}
}

func reqErr(f [][]byte) error { _, err := ParseClientRequest(f); return err }
func repErr(f [][]byte) error { _, err := ParseClientReply(f); return err }
func wkErr(f [][]byte) error  { _, err := ParseWorkerMessage(f); return err }
