package codec

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/wire/wiretest"
)

const vectorsPath = "../wire/testdata/vectors.txt"

func loadVectors(tb testing.TB) *wiretest.Vectors {
	tb.Helper()
	return wiretest.Load(tb, vectorsPath)
}

func mustNew(tb testing.TB, opts ...Option) *Codec {
	tb.Helper()
	c, err := New(opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

const boomTB = "  File \"gaterpc/core.py\", line 554, in process_request\n    result = await func(*args, **kwargs)\n             ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"capture/vectors_own.py\", line 102, in boom\n    raise ValueError(\"boom!\")\n"

// TestMarshalVectors encodes Go values built independently of the vectors
// and compares the bytes with what Python's msgpack produced (groups 1, 2
// and 5).
func TestMarshalVectors(t *testing.T) {
	vs := loadVectors(t)
	enc := func(v any) func() ([]byte, error) { return func() ([]byte, error) { return Marshal(v) } }
	tests := []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"V_STR_HELLO", enc("hello")},
		{"V_INT_42", enc(42)},
		{"V_EMPTY_ARRAY", enc([]any{})},
		{"V_EMPTY_MAP", enc(map[string]any{})},
		{"V_SINGLETON_OK", func() ([]byte, error) { return EncodeResult(42) }},
		{"V_GATE_GET_SERVICES_FUNC", enc("get_services")},
		{"V_GATE_KEEPALIVE_FUNC", enc("keepalive")},
		{"V_GATE_KEEPALIVE_ARGS_BIN", enc([]any{[]byte("heartbeat")})},
		{"V_GATE_KEEPALIVE_REPLY_200", func() ([]byte, error) { return EncodeResult([]byte("200")) }},
		{"V_GATE_KEEPALIVE_REPLY_400", func() ([]byte, error) { return EncodeResult([]byte("400")) }},
		{"V_GATE_QUERY_SERVICE_FUNC", enc("query_service")},
		{"V_GATE_QUERY_SERVICE_ARGS", enc([]string{"GateRPC"})},
		{"V_GATE_INFO_FUNC", enc("info")},
		{"V_GATE_GET_SERVICES_REPLY", func() ([]byte, error) { return EncodeResult([]string{"GateRPC", "Gate"}) }},
		{"V_GATE_JOIN_BODY_example", enc(map[string]int{"GateRPC": 5000})},
		{"V_GATE_NOTICE_BODY0_service", enc("GateRPC")},
		{"V_GATE_NOTICE_BODY1_capacity", enc(uint16(5000))},
		{"REQ_ECHO_FUNC", enc("echo")},
		{"REQ_ECHO_ARGS", enc([]any{"a", 1})},
		{"REQ_ECHO_KWARGS", enc(map[string]bool{"k": true})},
		{"REQ_NOARGS_ARGS", enc([]int{})},
		{"REQ_NOARGS_KWARGS", enc(map[string]any{})},
		{"REP_ECHO_BODY", func() ([]byte, error) {
			return EncodeResult(map[string]any{"args": []any{"a", int8(1)}, "kwargs": map[string]any{"k": true}})
		}},
		{"REP_OK_RESULT_A", func() ([]byte, error) { return EncodeResult("a") }},
		{"REP_OK_RESULT_NONE", func() ([]byte, error) { return EncodeResult(nil) }},
		{"REP_EXC_BODY", func() ([]byte, error) { return EncodeException("ValueError", "ValueError('boom!')", boomTB) }},
		{"V_SINGLETON_EXC", func() ([]byte, error) {
			r, exc, err := DecodeReply(vs.Get(t, "V_SINGLETON_EXC"))
			if err != nil || exc == nil || exc.Class != "ValueError" || !bytes.Equal(r, []byte{0xc0}) {
				t.Fatalf("DecodeReply(V_SINGLETON_EXC) = %x, %+v, %v", r, exc, err)
			}
			return EncodeException(exc.Class, exc.Repr, exc.Traceback)
		}},
		{"STREAM_GEN3_MSG0_FRAME_7", enc(0)},
		{"STREAM_GEN3_MSG1_FRAME_7", enc(uint8(1))},
		{"STREAM_GEN3_MSG2_FRAME_7", enc(int64(2))},
		{"STREAM_GENBOOM_MSG0_TAIL_1", enc(1)},
		{"STREAM_GENBOOM_MSG1_TAIL_2", func() ([]byte, error) {
			exc, err := DecodeTriple(vs.Get(t, "STREAM_GENBOOM_MSG1_TAIL_2"))
			if err != nil || exc.Class != "ValueError" || exc.Repr != "ValueError('boom!')" || !strings.Contains(exc.Traceback, "raise ValueError") {
				t.Fatalf("DecodeTriple = %+v, %v", exc, err)
			}
			return EncodeTriple(exc.Class, exc.Repr, exc.Traceback)
		}},
		{"V013_REQUEST_BODY_ECHO", enc(Map{{"func", "echo"}, {"args", []any{"a", 1}}, {"kwargs", Map{{"k", true}}}})},
		{"V013_EXC_REPLY_VALUEERROR_no_tb", func() ([]byte, error) {
			return EncodeException("<class 'ValueError'>", "boom!", "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := vs.Get(t, tt.name)
			got, err := tt.fn()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %x\nwant %x", got, want)
			}
			checkRoundTrip(t, want)
		})
	}
}

// checkRoundTrip asserts that Decode with OrderedMaps then Marshal gives
// b back, and that the plain Decode is stable (encode, decode, encode).
func checkRoundTrip(t *testing.T, b []byte) {
	t.Helper()
	oc := mustNew(t, OrderedMaps())
	v, err := oc.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%x): %v", b, err)
	}
	got, err := oc.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", v, err)
	}
	if !bytes.Equal(got, b) {
		t.Fatalf("Marshal(Decode(%x)) = %x", b, got)
	}
	v2, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode(%x): %v", b, err)
	}
	b2, err := Marshal(v2)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := Decode(b2)
	if err != nil {
		t.Fatal(err)
	}
	if b3, err := Marshal(v3); err != nil || !bytes.Equal(b2, b3) {
		t.Fatalf("unstable round trip %x -> %x -> %x (%v)", b, b2, b3, err)
	}
}

// TestCaptureValues builds the msgpack bodies of the live capture from Go
// values and compares them with the captured bytes.
func TestCaptureValues(t *testing.T) {
	vs := loadVectors(t)
	brokerID := []byte{0x15, 0xa9, 0xcf, 0x1f, 0x31, 0x15, 0x5d, 0x5b, 0x8c, 0x6e, 0xfa, 0x13, 0xa2, 0xa9, 0x53, 0x00}
	reply := func(msg string, frame int, fn func() ([]byte, error)) func(t *testing.T) {
		return func(t *testing.T) {
			want := vs.Get(t, msg+"_F"+string(rune('0'+frame)))
			got, err := fn()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %x\nwant %x", got, want)
			}
		}
	}
	res := func(v any) func() ([]byte, error) { return func() ([]byte, error) { return EncodeResult(v) } }
	t.Run("get_services request", func(t *testing.T) {
		body, err := EncodeRequestBody("get_services", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := vs.Frames("LIVE_CONNECT_M01_C2B_F")[4:]; !framesEqual(body, want) {
			t.Fatalf("got %x, want %x", body, want)
		}
	})
	t.Run("keepalive request", func(t *testing.T) {
		body, err := EncodeRequestBody("keepalive", []any{[]byte("heartbeat")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := vs.Frames("LIVE_INTERNAL_KEEPALIVE_M01_C2B_F")[4:]; !framesEqual(body, want) {
			t.Fatalf("got %x, want %x", body, want)
		}
	})
	t.Run("echo request", func(t *testing.T) {
		body, err := EncodeRequestBody("echo", []any{"a", 1}, map[string]any{"k": true})
		if err != nil {
			t.Fatal(err)
		}
		if want := vs.Frames("LIVE_PLAIN_CALL_M01_C2B_F")[4:]; !framesEqual(body, want) {
			t.Fatalf("got %x, want %x", body, want)
		}
	})
	t.Run("get_services reply", reply("LIVE_CONNECT_M02_B2C", 5, res([]any{"GateRPC", "Gate"})))
	t.Run("get_services reply 5", reply("LIVE_RAW_CLIENT_BAD_FRAMES_M02_B2C", 5, res([]string{"GateRPC", "Raw", "Raw2", "Busy", "Gate"})))
	t.Run("info reply", reply("LIVE_INTERNAL_INFO_M02_B2C", 5, res(map[string]any{"my_id": brokerID, "services": []string{"GateRPC"}})))
	t.Run("query_service reply", reply("LIVE_INTERNAL_QUERY_SERVICE_M02_B2C", 5, res("gate-rpc service")))
	t.Run("query_service nil reply", reply("LIVE_INTERNAL_QUERY_SERVICE_VIA_CLIENT_HELPER_DOUBLE_PACKED_M02_B2C", 5, res(nil)))
	t.Run("keepalive reply", reply("LIVE_INTERNAL_KEEPALIVE_M02_B2C", 5, res([]byte("200"))))
	t.Run("keepalive str reply", reply("LIVE_INTERNAL_KEEPALIVE_STR_ARG_M02_B2C", 5, res([]byte("400"))))
	t.Run("heartbeat keepalive reply", reply("LIVE_HEARTBEATS_M03_B2C", 5, res([]byte("200"))))
	t.Run("echo reply", reply("LIVE_PLAIN_CALL_M07_B2C", 5, res(Map{{"args", []any{"a", 1}}, {"kwargs", map[string]bool{"k": true}}})))
	t.Run("simpleclient reply", reply("LIVE_SIMPLECLIENT_REQ_SOCKET_M07_B2C", 5, res(map[string]any{"args": []any{"s", 2}, "kwargs": map[string]any{}})))
	t.Run("secure false reply", reply("LIVE_SET_SECURE_FALSE_M04_B2C", 5, res(false)))
	t.Run("secure true reply", reply("LIVE_SET_SECURE_TRUE_M04_B2C", 5, res(true)))
	t.Run("raw worker reply", reply("LIVE_RAW_WORKER_SERVING_THEN_DISCONNECT_M06_RW2B", 6, res("raw-ok")))
	t.Run("missing service", reply("LIVE_MISSING_SERVICE_M02_B2C", 5, func() ([]byte, error) {
		return EncodeException("ServiceUnAvailableError", "ServiceUnAvailableError('The NoSuchService Service unavailable.')",
			"  File \"gaterpc/core.py\", line 1807, in request_backend\n    raise ServiceUnAvailableError(service_name)\n")
	}))
	t.Run("missing method", reply("LIVE_MISSING_METHOD_SECURE_FALSE_M04_B2C", 5, func() ([]byte, error) {
		return EncodeException("AttributeError", "AttributeError('Function not found: no_such_method')",
			"  File \"gaterpc/core.py\", line 549, in process_request\n    raise AttributeError(\n")
	}))
	t.Run("stream items", func(t *testing.T) {
		for i, name := range []string{"LIVE_GENERATOR_3_ITEMS_M07_B2C_F6", "LIVE_GENERATOR_3_ITEMS_M08_B2C_F6", "LIVE_GENERATOR_3_ITEMS_M09_B2C_F6"} {
			if got, _ := Marshal(i); !bytes.Equal(got, vs.Get(t, name)) {
				t.Fatalf("item %d: got %x, want %x", i, got, vs.Get(t, name))
			}
		}
	})
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

// captureRequests is the call made in each captured sequence.
var captureRequests = map[string]struct {
	fn     string
	args   []any
	kwargs map[string]any
	frames int // 0: all three
}{
	"CONNECT":                            {fn: "get_services"},
	"SERVICE_LIST_GET_SERVICES":          {fn: "get_services"},
	"PLAIN_CALL":                         {fn: "echo", args: []any{"a", 1}, kwargs: map[string]any{"k": true}},
	"GENERATOR_3_ITEMS":                  {fn: "gen3"},
	"EXCEPTION":                          {fn: "boom"},
	"GENERATOR_EXCEPTION":                {fn: "genboom"},
	"HUGEDATA_5000_RANDOM_BYTES":         {fn: "huge", args: []any{"random"}},
	"MISSING_METHOD_SECURE_TRUE":         {fn: "no_such_method", args: []any{1}},
	"MISSING_METHOD_SECURE_FALSE":        {fn: "no_such_method", args: []any{1}},
	"SET_SECURE_FALSE":                   {fn: "set_secure", args: []any{false}},
	"SET_SECURE_TRUE":                    {fn: "set_secure", args: []any{true}},
	"MISSING_SERVICE":                    {fn: "echo", args: []any{"a"}},
	"INTERNAL_INFO":                      {fn: "info"},
	"INTERNAL_QUERY_SERVICE":             {fn: "query_service", args: []any{"GateRPC"}},
	"INTERNAL_KEEPALIVE":                 {fn: "keepalive", args: []any{[]byte("heartbeat")}},
	"INTERNAL_KEEPALIVE_STR_ARG":         {fn: "keepalive", args: []any{"heartbeat"}},
	"INTERNAL_MISSING_FUNCTION":          {fn: "no_such_function"},
	"GET_INTERFACES":                     {fn: "get_interfaces"},
	"RAW_WORKER_SERVING_THEN_DISCONNECT": {fn: "anything", args: []any{1}},
	"BUSY_NO_IDLE_WORKER":                {fn: "x"},
	"RAW_CLIENT_BAD_FRAMES":              {fn: "get_services", frames: 2},
	"SIMPLECLIENT_REQ_SOCKET":            {fn: "echo", args: []any{"s", 2}},
	"HEARTBEATS":                         {fn: "keepalive", args: []any{[]byte("heartbeat")}},
	"IDLE_HEARTBEATS_12S":                {fn: "keepalive", args: []any{[]byte("heartbeat")}},
	"INTERNAL_QUERY_SERVICE_VIA_CLIENT_HELPER_DOUBLE_PACKED": {fn: "query_service", args: []any{[]byte("\xa7GateRPC")}},
}

// TestCaptureBodies decodes every msgpack body of the live capture with
// the protocol helpers and re-encodes it.
func TestCaptureBodies(t *testing.T) {
	vs := loadVectors(t)
	var requests, singles, items, triples int
	for _, m := range vs.Messages() {
		frames := m.Frames
		switch m.Leg {
		case "B2W", "B2C", "BFRONT_RECV", "BBACK_RECV":
			frames = frames[1:]
		case "REQ2B", "REQ_RECV":
			frames = append([][]byte{{}}, frames...)
		}
		var body [][]byte
		isRequest := false
		if r, err := wire.ParseClientRequest(frames); err == nil && (m.Leg == "C2B" || m.Leg == "RC2B" || m.Leg == "REQ2B" || m.Leg == "BFRONT_RECV") {
			body, isRequest = r.Body, true
		} else if r, err := wire.ParseClientReply(frames); err == nil {
			body = r.Body
		} else if w, err := wire.ParseWorkerMessage(frames); err == nil && (w.Command == wire.CmdRequest || w.Command == wire.CmdReply) {
			body, isRequest = w.Body, w.Command == wire.CmdRequest
		} else {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			if isRequest {
				want, ok := captureRequests[m.Seq]
				if !ok {
					t.Fatalf("no expected request for sequence %s", m.Seq)
				}
				wantBody, err := EncodeRequestBody(want.fn, want.args, want.kwargs)
				if err != nil {
					t.Fatal(err)
				}
				if want.frames > 0 {
					wantBody = wantBody[:want.frames]
				}
				if !framesEqual(body, wantBody) {
					t.Fatalf("request body %x, want %x", body, wantBody)
				}
				requests++
				fn, args, kwargs, err := DecodeRequestBody(body)
				if err != nil {
					t.Fatalf("DecodeRequestBody(%x): %v", body, err)
				}
				if fn == "" || (len(body) > 1 && args == nil) || (len(body) > 2 && kwargs == nil) {
					t.Fatalf("DecodeRequestBody = %q, %x, %x", fn, args, kwargs)
				}
				for _, f := range body {
					checkRoundTrip(t, f)
				}
				return
			}
			kind, payload := wire.ClassifyReply(body)
			switch kind {
			case wire.ReplySingle:
				singles++
				result, exc, err := DecodeReply(payload)
				if err != nil {
					t.Fatalf("DecodeReply(%x): %v", payload, err)
				}
				var again []byte
				if exc != nil {
					again, err = EncodeException(exc.Class, exc.Repr, exc.Traceback)
				} else {
					again, err = EncodeResult(result)
				}
				if err != nil || !bytes.Equal(again, payload) {
					t.Fatalf("re-encoded %x, want %x (%v)", again, payload, err)
				}
				checkRoundTrip(t, payload)
			case wire.ReplyStreamItem:
				items++
				checkRoundTrip(t, payload)
			case wire.ReplyStreamError:
				triples++
				exc, err := DecodeTriple(payload)
				if err != nil {
					t.Fatal(err)
				}
				if again, _ := EncodeTriple(exc.Class, exc.Repr, exc.Traceback); !bytes.Equal(again, payload) {
					t.Fatalf("re-encoded %x, want %x", again, payload)
				}
			}
		})
	}
	if requests == 0 || singles == 0 || items == 0 || triples == 0 {
		t.Fatalf("requests %d, singles %d, items %d, triples %d", requests, singles, items, triples)
	}
	t.Logf("requests %d, single replies %d, stream items %d, triples %d", requests, singles, items, triples)
}

// TestHugeDataPayload reassembles the HugeData chunks (group 2 and the live
// capture), gunzips them (the CRC catches any changed byte) and checks the
// msgpack value inside.
func TestHugeDataPayload(t *testing.T) {
	vs := loadVectors(t)
	var group2, live []byte
	for i := 0; i <= 5; i++ {
		group2 = append(group2, vs.Get(t, "HUGE_RANDOM_CHUNK"+string(rune('0'+i)))...)
	}
	for _, m := range vs.Messages() {
		if m.Seq == "HUGEDATA_5000_RANDOM_BYTES" && m.Leg == "W2B" {
			r, err := wire.ParseWorkerMessage(m.Frames)
			if err != nil {
				t.Fatal(err)
			}
			if k, p := wire.ClassifyReply(r.Body); k == wire.ReplyHugeChunk {
				live = append(live, p...)
			}
		}
	}
	for name, gz := range map[string][]byte{"group2": group2, "live": live} {
		t.Run(name, func(t *testing.T) {
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			packed, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("gunzip: %v", err)
			}
			v, err := Decode(packed)
			if err != nil {
				t.Fatal(err)
			}
			data, ok := v.([]byte)
			if !ok || len(data) != 5000 {
				t.Fatalf("HugeData value is %T of %d bytes", v, len(data))
			}
			if again, _ := Marshal(data); !bytes.Equal(again, packed) {
				t.Fatal("re-encoded HugeData value differs")
			}
			if name == "group2" && !bytes.Equal(packed[:8], vs.Get(t, "HUGE_RANDOM_PACKED_VALUE_FIRST8")) {
				t.Fatalf("packed value starts %x", packed[:8])
			}
		})
	}
}
