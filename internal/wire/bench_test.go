package wire

import "testing"

func BenchmarkParseRequest(b *testing.B) {
	frames := WithRouting([]byte("0123456789abcdef"), ClientRequest{Service: DefaultService, RequestID: []byte("0123456789abcdef"),
		Body: [][]byte{[]byte("\xa4echo"), []byte("\x92\xa1a\x01"), []byte("\x81\xa1k\xc3")}}.Frames())
	b.ReportAllocs()
	for b.Loop() {
		_, rest, err := SplitRouting(frames)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseClientRequest(rest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseReply(b *testing.B) {
	frames := WorkerMessage{Command: CmdReply, Client: []byte("0123456789abcdef"), RequestID: []byte("0123456789abcdef"),
		Body: SingleBody([]byte("\x82\xa6result\x2a\xa9exception\xc0"))}.Frames()
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseWorkerMessage(frames)
		if err != nil {
			b.Fatal(err)
		}
		if k, _ := ClassifyReply(m.Body); k != ReplySingle {
			b.Fatal(k)
		}
	}
}

func BenchmarkEncodeRequestFrames(b *testing.B) {
	r := ClientRequest{Service: DefaultService, RequestID: []byte("0123456789abcdef"), Body: [][]byte{[]byte("\xa4echo"), {0x90}, {0x80}}}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Frames()
	}
}

func BenchmarkRequestID(b *testing.B) {
	meta := RequestMeta{Budget: 1500000000, MD: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	base := []byte("0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		id := EncodeRequestID(base, meta)
		if _, _, err := DecodeRequestID(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRequestIDFlow decodes the id of a traced call with flow
// control on: a budget, traceparent, gate.window and gate.chunk.
func BenchmarkDecodeRequestIDFlow(b *testing.B) {
	id := EncodeRequestID([]byte("0123456789abcdef"), RequestMeta{Budget: 1500000000, MD: map[string]string{
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		MetaWindow:    Window{Items: 1024, Bytes: 8 << 20}.String(),
		MetaChunk:     "262144",
	}})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRequestID(id); err != nil {
			b.Fatal(err)
		}
	}
}
