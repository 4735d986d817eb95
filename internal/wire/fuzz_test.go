package wire

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gaterpc/gate/internal/wire/wiretest"
)

// updateCorpus rewrites the committed seed corpora under testdata/fuzz from
// the vectors: go test ./internal/wire -run TestWriteSeedCorpus -update-corpus
var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed corpora from the vectors")

func TestMultipartCodec(t *testing.T) {
	in := [][]byte{{}, []byte("MDPW01"), {4}, bytes.Repeat([]byte{7}, 300)}
	if got := wiretest.DecodeMultipart(wiretest.EncodeMultipart(in)); !framesEqual(got, in) {
		t.Fatalf("wiretest.DecodeMultipart(wiretest.EncodeMultipart(%s)) = %s", fmtFrames(in), fmtFrames(got))
	}
}

// seedMessages returns the captured messages in the DEALER view, for the
// given parser ("request", "reply" or "worker").
func seedMessages(tb testing.TB, kind string) map[string][][]byte {
	vs := loadVectors(tb)
	out := map[string][][]byte{}
	for _, m := range vs.Messages() {
		frames := m.Frames
		switch m.Leg {
		case "B2W", "B2C", "BFRONT_RECV", "BBACK_RECV":
			frames = frames[1:]
		case "REQ2B", "REQ_RECV":
			frames = append([][]byte{{}}, frames...)
		}
		var k string
		switch m.Leg {
		case "C2B", "RC2B", "REQ2B", "BFRONT_RECV":
			k = "request"
		case "B2C", "C_RECV", "REQ_RECV":
			k = "reply"
		default:
			k = "worker"
		}
		if k == kind {
			out[m.Name] = frames
		}
	}
	switch kind {
	case "worker":
		out["cancel"] = WorkerMessage{Command: CmdCancel, Client: []byte("c"), RequestID: []byte("r")}.Frames()
		out["heartbeat_capability"] = WorkerMessage{Command: CmdHeartbeat, Extra: [][]byte{[]byte(GateCapability)}}.Frames()
		out["ready_colon_description"] = WorkerMessage{Command: CmdReady, Service: "S", Description: "a:b", Capacity: 7}.Frames()
	case "request":
		out["group2_echo"] = vs.Frames("REQ_ECHO_CLIENT_FRAME_")
	}
	return out
}

func seedRequestIDs() map[string][]byte {
	return map[string][]byte{
		"plain":    []byte("0123456789abcdef"),
		"budget":   EncodeRequestID([]byte("0123456789abcdef"), RequestMeta{Budget: 2500000}),
		"metadata": EncodeRequestID([]byte("0123456789abcdef"), RequestMeta{Budget: 1e9, MD: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=b"}}),
		"magic":    []byte(ExtMagic),
	}
}

// TestWriteSeedCorpus checks that the committed seed corpus is what the
// vectors give today; with -update-corpus it rewrites it.
func TestWriteSeedCorpus(t *testing.T) {
	write := func(fuzzName, seedName string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", fuzzName)
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		name := "seed-" + strings.ToLower(strings.ReplaceAll(seedName, "/", "_"))
		checkSeed(t, filepath.Join(dir, name), content, *updateCorpus)
	}
	for name, frames := range seedMessages(t, "worker") {
		write("FuzzParseWorkerMessage", name, wiretest.EncodeMultipart(frames))
	}
	for name, frames := range seedMessages(t, "request") {
		write("FuzzParseClientRequest", name, wiretest.EncodeMultipart(frames))
	}
	for name, frames := range seedMessages(t, "reply") {
		write("FuzzParseClientReply", name, wiretest.EncodeMultipart(frames))
	}
	for name, id := range seedRequestIDs() {
		write("FuzzDecodeRequestID", name, id)
	}
}

func FuzzParseWorkerMessage(f *testing.F) {
	for _, frames := range seedMessages(f, "worker") {
		f.Add(wiretest.EncodeMultipart(frames))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := wiretest.DecodeMultipart(data)
		m, err := ParseWorkerMessage(frames)
		if err != nil {
			if _, ok := err.(*ProtocolError); !ok {
				t.Fatalf("error %T is not a *ProtocolError", err)
			}
			return
		}
		got := m.Frames()
		if m.Command == CmdReady {
			// READY capacities are parsed leniently ("+5", " 5", "05"):
			// the round trip is semantic, and the canonical form is stable.
			m2, err := ParseWorkerMessage(got)
			if err != nil || m2.Service != m.Service || m2.Description != m.Description || m2.Capacity != m.Capacity {
				t.Fatalf("READY %s re-parsed as %+v, %v; want %+v", fmtFrames(got), m2, err, m)
			}
			if again := m2.Frames(); !framesEqual(again, got) {
				t.Fatalf("READY not stable: %s then %s", fmtFrames(got), fmtFrames(again))
			}
			return
		}
		if !framesEqual(got, frames) {
			t.Fatalf("ParseWorkerMessage(%s).Frames() = %s", fmtFrames(frames), fmtFrames(got))
		}
		if m.Command == CmdReply {
			checkBodyRoundTrip(t, m.Body)
		}
	})
}

// checkBodyRoundTrip asserts that a classified reply body is rebuilt
// exactly by the body builders.
func checkBodyRoundTrip(t *testing.T, body [][]byte) {
	k, p := ClassifyReply(body)
	var got [][]byte
	switch k {
	case ReplyUnknown:
		return
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
		if bytes.Equal(body[1], tagHugeExc) { // the 0.2.12 broker-internal variant
			got[1] = tagHugeExc
		}
	}
	if !framesEqual(got, body) {
		t.Fatalf("%v body %s rebuilt as %s", k, fmtFrames(body), fmtFrames(got))
	}
	if k.IsError() && !k.Final() {
		t.Fatalf("%v is an error but not final", k)
	}
}

func FuzzParseClientRequest(f *testing.F) {
	for _, frames := range seedMessages(f, "request") {
		f.Add(wiretest.EncodeMultipart(frames))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := wiretest.DecodeMultipart(data)
		r, err := ParseClientRequest(frames)
		if err != nil {
			if _, ok := err.(*ProtocolError); !ok {
				t.Fatalf("error %T is not a *ProtocolError", err)
			}
			return
		}
		if got := r.Frames(); !framesEqual(got, frames) {
			t.Fatalf("ParseClientRequest(%s).Frames() = %s", fmtFrames(frames), fmtFrames(got))
		}
		// Whatever the request id holds, decoding it must not panic, and
		// a decoded extended id must re-encode exactly.
		checkRequestIDRoundTrip(t, r.RequestID)
	})
}

func FuzzParseClientReply(f *testing.F) {
	for _, frames := range seedMessages(f, "reply") {
		f.Add(wiretest.EncodeMultipart(frames))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := wiretest.DecodeMultipart(data)
		r, err := ParseClientReply(frames)
		if err != nil {
			if _, ok := err.(*ProtocolError); !ok {
				t.Fatalf("error %T is not a *ProtocolError", err)
			}
			return
		}
		if got := r.Frames(); !framesEqual(got, frames) {
			t.Fatalf("ParseClientReply(%s).Frames() = %s", fmtFrames(frames), fmtFrames(got))
		}
		checkBodyRoundTrip(t, r.Body)
	})
}

func checkRequestIDRoundTrip(t *testing.T, id []byte) {
	base, meta, err := DecodeRequestID(id)
	if err != nil {
		if _, ok := err.(*ProtocolError); !ok {
			t.Fatalf("error %T is not a *ProtocolError", err)
		}
		if !IsExtended(id) {
			t.Fatalf("plain id %x rejected: %v", id, err)
		}
		return
	}
	if !IsExtended(id) {
		if !bytes.Equal(base, id) || meta.Budget != 0 || meta.MD != nil {
			t.Fatalf("plain id %x decoded as %x, %+v", id, base, meta)
		}
		return
	}
	if len(meta.MD) > MaxExtPairs || meta.Budget > MaxBudget || meta.Budget < 0 {
		t.Fatalf("DecodeRequestID(%x) exceeds caps: %+v", id, meta)
	}
	if got := EncodeRequestID(base, meta); !bytes.Equal(got, id) {
		t.Fatalf("DecodeRequestID(%x) = %x, %+v; re-encoded %x", id, base, meta, got)
	}
}

func FuzzDecodeRequestID(f *testing.F) {
	for _, id := range seedRequestIDs() {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id []byte) {
		checkRequestIDRoundTrip(t, id)
	})
}

// checkSeed writes content to path when update is set, and otherwise fails
// unless the committed file holds exactly content.
func checkSeed(t *testing.T, path, content string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != content {
		t.Errorf("seed %s is missing or stale (%v); regenerate with: go test -run TestWriteSeedCorpus -update-corpus", path, err)
	}
}
