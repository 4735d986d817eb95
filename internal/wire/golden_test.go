package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/internal/wire/wiretest"
)

const vectorsPath = "testdata/vectors.txt"

func loadVectors(tb testing.TB) *wiretest.Vectors {
	tb.Helper()
	return wiretest.Load(tb, vectorsPath)
}

func framesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func fmtFrames(fs [][]byte) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%x", f)
	}
	return "[" + strings.Join(parts, " | ") + "]"
}

func TestConstants(t *testing.T) {
	vs := loadVectors(t)
	tests := []struct {
		name string
		got  []byte
	}{
		{"C_MDP_CLIENT", []byte(ClientHeader)},
		{"C_MDP_WORKER", []byte(WorkerHeader)},
		{"C_STREAM_GEN", []byte(TagStream)},
		{"C_STREAM_END", []byte(TagStreamEnd)},
		{"C_STREAM_EXC", []byte(TagStreamException)},
		{"C_HUGE_TAG", []byte(TagHuge)},
		{"C_HUGE_END", []byte(TagHugeEnd)},
		{"C_HUGE_EXC", []byte(TagHugeException)},
		{"C_CMD_READY", []byte{byte(CmdReady)}},
		{"C_CMD_REQUEST", []byte{byte(CmdRequest)}},
		{"C_CMD_REPLY", []byte{byte(CmdReply)}},
		{"C_CMD_HEARTBEAT", []byte{byte(CmdHeartbeat)}},
		{"C_CMD_DISCONNECT", []byte{byte(CmdDisconnect)}},
		{"C_INTERNAL_SERVICE_NAME", []byte(InternalService)},
		{"C_DEFAULT_SERVICE_NAME", []byte(DefaultService)},
		{"V_READY_BODY", []byte(ReadyText("Echo", "A test service", 32))},
		{"V_READY_BODY_DEFAULTS", []byte(ReadyText(DefaultService, "gate-rpc service", 5000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := vs.Get(t, tt.name); !bytes.Equal(tt.got, want) {
				t.Fatalf("got %x, want %x", tt.got, want)
			}
		})
	}
}

// TestGroup2Frames builds the group-2 messages from their fields and
// compares them with what the 0.2.12 worker code produced, then parses the
// vectors back.
func TestGroup2Frames(t *testing.T) {
	vs := loadVectors(t)
	rid := vs.Get(t, "ID_REQUEST")
	cid := vs.Get(t, "ID_CLIENT_uuid5_gc-0000000000000000")
	echoBody := [][]byte{vs.Get(t, "REQ_ECHO_FUNC"), vs.Get(t, "REQ_ECHO_ARGS"), vs.Get(t, "REQ_ECHO_KWARGS")}

	t.Run("client request", func(t *testing.T) {
		want := vs.Frames("REQ_ECHO_CLIENT_FRAME_")
		got := ClientRequest{Service: DefaultService, RequestID: rid, Body: echoBody}.Frames()
		if !framesEqual(got, want) {
			t.Fatalf("Frames() = %s, want %s", fmtFrames(got), fmtFrames(want))
		}
		r, err := ParseClientRequest(want)
		if err != nil || r.Service != DefaultService || !bytes.Equal(r.RequestID, rid) || !framesEqual(r.Body, echoBody) {
			t.Fatalf("ParseClientRequest = %+v, %v", r, err)
		}
	})
	t.Run("worker reply", func(t *testing.T) {
		want := vs.Frames("REP_ECHO_WORKER_FRAME_")
		body := vs.Get(t, "REP_ECHO_BODY")
		got := WorkerMessage{Command: CmdReply, Client: cid, RequestID: rid, Body: SingleBody(body)}.Frames()
		if !framesEqual(got, want) {
			t.Fatalf("Frames() = %s, want %s", fmtFrames(got), fmtFrames(want))
		}
		m, err := ParseWorkerMessage(want)
		if err != nil || m.Command != CmdReply || !bytes.Equal(m.Client, cid) || !bytes.Equal(m.RequestID, rid) {
			t.Fatalf("ParseWorkerMessage = %+v, %v", m, err)
		}
		if k, p := ClassifyReply(m.Body); k != ReplySingle || !bytes.Equal(p, body) {
			t.Fatalf("ClassifyReply = %v, %x", k, p)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		want := vs.Frames("V_HEARTBEAT_FRAME_")
		if got := (WorkerMessage{Command: CmdHeartbeat}).Frames(); !framesEqual(got, want) {
			t.Fatalf("Frames() = %s, want %s", fmtFrames(got), fmtFrames(want))
		}
	})
	t.Run("stream", func(t *testing.T) {
		bodies := [][][]byte{StreamItemBody([]byte{0}), StreamItemBody([]byte{1}), StreamItemBody([]byte{2}), StreamEndBody()}
		kinds := []ReplyKind{ReplyStreamItem, ReplyStreamItem, ReplyStreamItem, ReplyStreamEnd}
		for i, body := range bodies {
			want := vs.Frames(fmt.Sprintf("STREAM_GEN3_MSG%d_FRAME_", i)) // frames 3..7 only
			if len(want) != 0 {
				t.Fatalf("unexpected frame 0 for message %d", i)
			}
			want = nil
			for j := 3; j <= 7; j++ {
				want = append(want, vs.Get(t, fmt.Sprintf("STREAM_GEN3_MSG%d_FRAME_%d", i, j)))
			}
			got := WorkerMessage{Command: CmdReply, Client: cid, RequestID: rid, Body: body}.Frames()[3:]
			if !framesEqual(got, want) {
				t.Fatalf("message %d: %s, want %s", i, fmtFrames(got), fmtFrames(want))
			}
			if k, _ := ClassifyReply(want[3:]); k != kinds[i] {
				t.Fatalf("message %d: ClassifyReply = %v, want %v", i, k, kinds[i])
			}
		}
		tail0 := vs.Frames("STREAM_GENBOOM_MSG0_TAIL_")
		if !framesEqual(StreamItemBody([]byte{1}), tail0) {
			t.Fatalf("stream item %s, want %s", fmtFrames(StreamItemBody([]byte{1})), fmtFrames(tail0))
		}
		tail1 := vs.Frames("STREAM_GENBOOM_MSG1_TAIL_")
		k, triple := ClassifyReply(tail1)
		if k != ReplyStreamError || !k.Final() || !k.IsError() {
			t.Fatalf("ClassifyReply = %v", k)
		}
		if got := StreamErrorBody(triple); !framesEqual(got, tail1) {
			t.Fatalf("StreamErrorBody = %s, want %s", fmtFrames(got), fmtFrames(tail1))
		}
	})
	t.Run("huge", func(t *testing.T) {
		for i := 0; i <= 7; i++ {
			chunk := vs.Get(t, fmt.Sprintf("HUGE_RANDOM_CHUNK%d", i))
			want := [][]byte{[]byte(TagHuge), chunk}
			k, p := ClassifyReply(want)
			var got [][]byte
			switch {
			case i == 7:
				if k != ReplyHugeEnd {
					t.Fatalf("chunk %d: kind %v", i, k)
				}
				got = HugeEndBody()
			default:
				if k != ReplyHugeChunk {
					t.Fatalf("chunk %d: kind %v", i, k)
				}
				got = HugeChunkBody(p)
			}
			if !framesEqual(got, want) {
				t.Fatalf("chunk %d: %s, want %s", i, fmtFrames(got), fmtFrames(want))
			}
		}
	})
}

// checkRoundTrip parses one captured message with the parser its leg needs
// and asserts that re-encoding gives the captured frames back.
func checkRoundTrip(t *testing.T, m wiretest.Message) (req *ClientRequest, rep *ClientReply, wm *WorkerMessage, err error) {
	t.Helper()
	frames := m.Frames
	var route []byte
	switch m.Leg {
	case "B2W", "B2C", "BFRONT_RECV", "BBACK_RECV":
		route, frames, err = SplitRouting(frames)
		if err != nil {
			return nil, nil, nil, err
		}
	case "REQ2B", "REQ_RECV":
		// a REQ socket adds/strips the empty delimiter itself
		frames = append([][]byte{{}}, frames...)
	}
	var got [][]byte
	switch m.Leg {
	case "C2B", "RC2B", "REQ2B", "BFRONT_RECV":
		r, e := ParseClientRequest(frames)
		if e != nil {
			return nil, nil, nil, e
		}
		req, got = &r, r.Frames()
	case "B2C", "C_RECV", "REQ_RECV":
		r, e := ParseClientReply(frames)
		if e != nil {
			return nil, nil, nil, e
		}
		rep, got = &r, r.Frames()
	case "B2W", "W2B", "RW2B", "W_RECV", "RW_RECV", "BBACK_RECV":
		w, e := ParseWorkerMessage(frames)
		if e != nil {
			return nil, nil, nil, e
		}
		wm, got = &w, w.Frames()
	default:
		t.Fatalf("%s: unknown leg %s", m.Name, m.Leg)
	}
	if route != nil {
		got = WithRouting(route, got)
	} else if m.Leg == "REQ2B" || m.Leg == "REQ_RECV" {
		got = got[1:]
	}
	if !framesEqual(got, m.Frames) {
		t.Errorf("%s: re-encoded %s, captured %s", m.Name, fmtFrames(got), fmtFrames(m.Frames))
	}
	return req, rep, wm, nil
}

// TestCaptures parses every message of the live capture (group 3) and
// re-encodes it; it also checks the fields against the values the
// capture harness fixed, so a changed byte anywhere fails.
func TestCaptures(t *testing.T) {
	vs := loadVectors(t)
	msgs := vs.Messages()
	if len(msgs) < 140 {
		t.Fatalf("only %d captured messages", len(msgs))
	}
	cid := vs.Get(t, "ID_CLIENT_uuid5_gc-0000000000000000")
	wid := vs.Get(t, "ID_WORKER_uuid5_GateRPCWorker-0000000000000000")
	knownServices := map[string]bool{"GateRPC": true, "Gate": true, "NoSuchService": true, "Raw2": true, "Busy": true}
	counts := map[string]int{}
	for _, m := range msgs {
		t.Run(m.Name, func(t *testing.T) {
			shape, ok := vs.Shape(m.Name)
			if !ok || len(shape) != len(m.Frames) {
				t.Fatalf("annotation %q does not match %d frames", shape, len(m.Frames))
			}
			for i, f := range m.Frames {
				if !wiretest.MatchShape(f, shape[i]) {
					t.Errorf("frame %d %x does not match annotation %s", i, f, shape[i])
				}
			}
			req, rep, wm, err := checkRoundTrip(t, m)
			if m.Name == "LIVE_RAW_CLIENT_BAD_FRAMES_M03_RC2B" {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Reason != ReasonHeader || !errors.Is(err, ErrMalformed) || string(m.Frames[1]) != "MDPC02" {
					t.Fatalf("MDPC02 request: err = %v, want header ProtocolError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			// Routing ids on ROUTER legs.
			switch m.Leg {
			case "B2C", "BFRONT_RECV":
				if id := m.Frames[0]; !bytes.Equal(id, cid) && !bytes.Equal(id, simpleClientID) && string(id) != "raw-client-0001" {
					t.Errorf("client routing id %x", id)
				}
			case "B2W", "BBACK_RECV":
				if id := m.Frames[0]; !bytes.Equal(id, wid) && !rawWorkerIDs[string(id)] {
					t.Errorf("worker routing id %x", id)
				}
			}
			switch {
			case req != nil:
				counts["request"]++
				if !knownServices[req.Service] {
					t.Errorf("service %q", req.Service)
				}
				checkRequestID(t, req.RequestID)
				if len(req.Body) < 1 || len(req.Body) > 3 {
					t.Errorf("request body has %d frames", len(req.Body))
				}
			case rep != nil:
				counts["reply"]++
				if !knownServices[rep.Service] {
					t.Errorf("service %q", rep.Service)
				}
				checkRequestID(t, rep.RequestID)
				k, _ := ClassifyReply(rep.Body)
				if k == ReplyUnknown {
					t.Errorf("reply body %s not classified", fmtFrames(rep.Body))
				}
				checkBodyRebuild(t, rep.Body)
			case wm != nil:
				counts[wm.Command.String()]++
				switch wm.Command {
				case CmdRequest, CmdReply:
					if !bytes.Equal(wm.Client, cid) && !bytes.Equal(wm.Client, simpleClientID) {
						t.Errorf("client id %x, want %x", wm.Client, cid)
					}
					checkRequestID(t, wm.RequestID)
					if wm.Command == CmdReply {
						checkBodyRebuild(t, wm.Body)
					}
				case CmdReady:
					if !readyTexts[ReadyText(wm.Service, wm.Description, wm.Capacity)] {
						t.Errorf("READY %q:%q:%d", wm.Service, wm.Description, wm.Capacity)
					}
				case CmdHeartbeat:
					if len(wm.Extra) != 0 {
						t.Errorf("heartbeat extra %s", fmtFrames(wm.Extra))
					}
				case CmdDisconnect:
				default:
					t.Errorf("unexpected command %v", wm.Command)
				}
			}
		})
	}
	for _, k := range []string{"request", "reply", "READY", "REQUEST", "REPLY", "HEARTBEAT", "DISCONNECT"} {
		if counts[k] == 0 {
			t.Errorf("no %s message among the captures", k)
		}
	}
	t.Logf("captured messages: %v", counts)
}

// simpleClientID is the routing id of the capture's SimpleClient (REQ).
var simpleClientID = []byte{0x3b, 0xb0, 0x08, 0x94, 0x48, 0x0a, 0x5c, 0x36, 0x94, 0x82, 0x9d, 0x52, 0x38, 0x7e, 0x84, 0xfb}

// rawWorkerIDs and readyTexts are the capture's hand-written workers.
var (
	rawWorkerIDs = map[string]bool{"raw-worker-0001": true, "raw-worker-0002": true, "raw-worker-0003": true}
	readyTexts   = map[string]bool{
		"GateRPC:gate-rpc service:5000": true,
		"Raw:raw test service:2":        true,
		"Raw2:hand written worker:1":    true,
		"Busy:always busy:0":            true,
	}
)

// checkRequestID accepts the harness's counter ids and the raw client's.
func checkRequestID(t *testing.T, id []byte) {
	t.Helper()
	if strings.HasPrefix(string(id), "RAWREQ-") {
		return
	}
	// 00000000-0000-4000-8000-00000000000N
	if len(id) != 16 || !bytes.Equal(id[:15], []byte{0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0}) || id[15] == 0 {
		t.Errorf("request id %x is not a harness counter id", id)
	}
}

// checkBodyRebuild rebuilds a reply body with the body builders.
func checkBodyRebuild(t *testing.T, body [][]byte) {
	t.Helper()
	k, p := ClassifyReply(body)
	var got [][]byte
	switch k {
	case ReplySingle:
		got = SingleBody(p)
	case ReplyStreamItem:
		got = StreamItemBody(p)
	case ReplyStreamEnd:
		got = StreamEndBody()
	case ReplyStreamError:
		got = StreamErrorBody(p)
	case ReplyHugeChunk:
		got = HugeChunkBody(p)
	case ReplyHugeEnd:
		got = HugeEndBody()
	case ReplyHugeError:
		got = HugeErrorBody(p)
	default:
		t.Errorf("unclassified body %s", fmtFrames(body))
		return
	}
	if !framesEqual(got, body) {
		t.Errorf("%v body rebuilt as %s, want %s", k, fmtFrames(got), fmtFrames(body))
	}
}

// TestCaptureSequences checks that the broker relays bodies verbatim
// between the legs of a sequence (C2B body == B2W body, W2B body == B2C body).
func TestCaptureSequences(t *testing.T) {
	vs := loadVectors(t)
	type legs struct{ c2b, b2w, w2b, b2c [][][]byte }
	seqs := map[string]*legs{}
	for _, m := range vs.Messages() {
		if m.Seq == "HEARTBEATS" || m.Seq == "IDLE_HEARTBEATS_12S" {
			continue
		}
		l := seqs[m.Seq]
		if l == nil {
			l = &legs{}
			seqs[m.Seq] = l
		}
		switch m.Leg {
		case "C2B":
			if r, err := ParseClientRequest(m.Frames); err == nil {
				l.c2b = append(l.c2b, r.Body)
			}
		case "B2W", "B2C":
			_, rest, _ := SplitRouting(m.Frames)
			if m.Leg == "B2C" {
				if r, err := ParseClientReply(rest); err == nil {
					l.b2c = append(l.b2c, r.Body)
				}
			} else if w, err := ParseWorkerMessage(rest); err == nil && w.Command == CmdRequest {
				l.b2w = append(l.b2w, w.Body)
			}
		case "W2B":
			if w, err := ParseWorkerMessage(m.Frames); err == nil && w.Command == CmdReply {
				l.w2b = append(l.w2b, w.Body)
			}
		}
	}
	// Within a call sequence every message carries the same request id.
	rids := map[string]map[string]bool{}
	for _, m := range vs.Messages() {
		if m.Seq == "HEARTBEATS" || m.Seq == "IDLE_HEARTBEATS_12S" || m.Seq == "RAW_WORKER_SERVING_THEN_DISCONNECT" || m.Seq == "RAW_CLIENT_BAD_FRAMES" {
			continue
		}
		frames := m.Frames
		switch m.Leg {
		case "B2W", "B2C", "BFRONT_RECV", "BBACK_RECV":
			frames = frames[1:]
		case "REQ2B", "REQ_RECV":
			frames = append([][]byte{{}}, frames...)
		}
		var rid []byte
		if r, err := ParseClientRequest(frames); err == nil {
			rid = r.RequestID
		}
		if w, err := ParseWorkerMessage(frames); err == nil && (w.Command == CmdRequest || w.Command == CmdReply) {
			rid = w.RequestID
		}
		if rid != nil {
			if rids[m.Seq] == nil {
				rids[m.Seq] = map[string]bool{}
			}
			rids[m.Seq][string(rid)] = true
		}
	}
	for seq, ids := range rids {
		if len(ids) != 1 {
			t.Errorf("%s: %d different request ids", seq, len(ids))
		}
	}
	for _, name := range []string{"PLAIN_CALL", "GENERATOR_3_ITEMS", "EXCEPTION", "GENERATOR_EXCEPTION", "HUGEDATA_5000_RANDOM_BYTES", "GET_INTERFACES"} {
		l := seqs[name]
		if l == nil || len(l.c2b) != 1 || len(l.b2w) != 1 || len(l.w2b) == 0 || len(l.w2b) != len(l.b2c) {
			t.Fatalf("%s: unexpected legs %+v", name, l)
		}
		if !framesEqual(l.c2b[0], l.b2w[0]) {
			t.Errorf("%s: request body changed by the broker", name)
		}
		for i := range l.w2b {
			if !framesEqual(l.w2b[i], l.b2c[i]) {
				t.Errorf("%s: reply %d changed by the broker", name, i)
			}
		}
		if k, _ := ClassifyReply(l.w2b[len(l.w2b)-1]); !k.Final() {
			t.Errorf("%s: last reply kind %v is not final", name, k)
		}
	}
}

func TestRequestIDRoundTrip(t *testing.T) {
	base := []byte("0123456789abcdef")
	tests := []struct {
		name string
		meta RequestMeta
		want RequestMeta // after the round trip
	}{
		{"plain", RequestMeta{}, RequestMeta{}},
		{"sub-microsecond budget is plain", RequestMeta{Budget: 500 * time.Nanosecond}, RequestMeta{}},
		{"negative budget is plain", RequestMeta{Budget: -time.Second}, RequestMeta{}},
		{"budget", RequestMeta{Budget: 1500 * time.Millisecond}, RequestMeta{Budget: 1500 * time.Millisecond}},
		{"budget clamped", RequestMeta{Budget: 48 * time.Hour}, RequestMeta{Budget: MaxBudget}},
		{"metadata", RequestMeta{MD: map[string]string{"traceparent": "00-abc-def-01", "baggage": "k=v"}},
			RequestMeta{MD: map[string]string{"traceparent": "00-abc-def-01", "baggage": "k=v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := EncodeRequestID(base, tt.meta)
			if IsExtended(id) != (tt.want.Budget > 0 || len(tt.want.MD) > 0) {
				t.Fatalf("IsExtended(%x) = %v", id, IsExtended(id))
			}
			b, meta, err := DecodeRequestID(id)
			if err != nil {
				t.Fatalf("DecodeRequestID(%x): %v", id, err)
			}
			if !bytes.Equal(b, base) || meta.Budget != tt.want.Budget || fmt.Sprint(meta.MD) != fmt.Sprint(tt.want.MD) {
				t.Fatalf("DecodeRequestID(%x) = %x, %+v, want %+v", id, b, meta, tt.want)
			}
			if again := EncodeRequestID(b, meta); !bytes.Equal(again, id) {
				t.Fatalf("re-encoded %x, want %x", again, id)
			}
		})
	}
}

func TestRequestIDGolden(t *testing.T) {
	id := EncodeRequestID([]byte{0xaa, 0xbb}, RequestMeta{Budget: 300 * time.Microsecond, MD: map[string]string{"b": "2", "a": "1"}})
	// magic | len 2 | aa bb | budget 300 = ac 02 | 2 pairs | 1 'a' 1 '1' | 1 'b' 1 '2'
	want := []byte("\x00GX1\x02\xaa\xbb\xac\x02\x02\x01a\x011\x01b\x012")
	if !bytes.Equal(id, want) {
		t.Fatalf("EncodeRequestID = %x, want %x", id, want)
	}
}

func TestDecodeRequestIDRejects(t *testing.T) {
	tests := []struct {
		name string
		id   string
	}{
		{"truncated", "\x00GX1"},
		{"empty base", "\x00GX1\x00\x01\x00"},
		{"base too long", "\x00GX1\x05ab\x01\x00"},
		{"overlong varint", "\x00GX1\x01a\x81\x00\x00"},
		{"no budget no pairs", "\x00GX1\x01a\x00\x00"},
		{"budget too large", "\x00GX1\x01a\x80\xe0\xc1\xa2\xc3\x02\x00"},
		{"too many pairs", "\x00GX1\x01a\x01\x21"},
		{"truncated pair", "\x00GX1\x01a\x00\x01\x01k"},
		{"unsorted keys", "\x00GX1\x01a\x00\x02\x01b\x00\x01a\x00"},
		{"duplicate keys", "\x00GX1\x01a\x00\x02\x01a\x00\x01a\x00"},
		{"trailing", "\x00GX1\x01a\x01\x00x"},
		{"too long", "\x00GX1" + strings.Repeat("x", MaxExtLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeRequestID([]byte(tt.id))
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Reason != ReasonExtension {
				t.Fatalf("DecodeRequestID(%x) err = %v, want extension ProtocolError", tt.id, err)
			}
		})
	}
}
