package codec

import (
	"fmt"
	"testing"

	"github.com/gaterpc/gate/internal/wire"
)

var benchRID = []byte("0123456789abcdef")

// BenchmarkRequestEncode encodes a request body and its frames, as a client does.
func BenchmarkRequestEncode(b *testing.B) {
	args := []any{"a", 1}
	kwargs := map[string]any{"k": true}
	b.ReportAllocs()
	for b.Loop() {
		body, err := EncodeRequestBody("echo", args, kwargs)
		if err != nil {
			b.Fatal(err)
		}
		_ = wire.ClientRequest{Service: wire.DefaultService, RequestID: benchRID, Body: body}.Frames()
	}
}

// BenchmarkRequestDecode parses request frames and splits the body, as a worker does.
func BenchmarkRequestDecode(b *testing.B) {
	body, _ := EncodeRequestBody("echo", []any{"a", 1}, map[string]any{"k": true})
	frames := wire.WorkerMessage{Command: wire.CmdRequest, Client: benchRID, RequestID: benchRID, Body: body}.Frames()
	b.ReportAllocs()
	for b.Loop() {
		m, err := wire.ParseWorkerMessage(frames)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := DecodeRequestBody(m.Body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReply encodes and decodes single replies of growing size.
func BenchmarkReply(b *testing.B) {
	for _, size := range []int{128, 4096, 65536, 1 << 20} {
		v := map[string]any{"args": []any{"a", 1}, "data": make([]byte, size)}
		reply, _ := EncodeResult(v)
		b.Run(fmt.Sprintf("encode/%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(reply)))
			for b.Loop() {
				if _, err := EncodeResult(v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("decode/%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(reply)))
			for b.Loop() {
				res, exc, err := DecodeReply(reply)
				if err != nil || exc != nil {
					b.Fatal(err)
				}
				if _, err := Decode(res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamItem encodes a stream item into its REPLY frames and decodes it back.
func BenchmarkStreamItem(b *testing.B) {
	item := []any{int64(42), "item", 3.5}
	b.ReportAllocs()
	for b.Loop() {
		p, err := Marshal(item)
		if err != nil {
			b.Fatal(err)
		}
		frames := wire.WorkerMessage{Command: wire.CmdReply, Client: benchRID, RequestID: benchRID, Body: wire.StreamItemBody(p)}.Frames()
		m, err := wire.ParseWorkerMessage(frames)
		if err != nil {
			b.Fatal(err)
		}
		_, payload := wire.ClassifyReply(m.Body)
		if _, err := Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalStruct decodes a reply result into a typed struct.
func BenchmarkUnmarshalStruct(b *testing.B) {
	data, _ := Marshal(sample{Name: "x", Count: 300, Ratio: 0.5, Data: []byte{1}, Tags: map[string]string{"a": "b"}})
	b.ReportAllocs()
	for b.Loop() {
		var s sample
		if err := Unmarshal(data, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// mapsResult is a result with nested str-keyed maps.
func mapsResult() []byte {
	item := map[string]any{"id": 7, "name": "item", "score": 0.5, "tags": []any{"a", "b"}}
	data, _ := Marshal(map[string]any{
		"meta":  map[string]any{"page": 1, "total": 100, "next": "cursor"},
		"items": []any{item, item, item, item},
	})
	return data
}

// BenchmarkDecodeMaps decodes a result of nested maps.
func BenchmarkDecodeMaps(b *testing.B) {
	data := mapsResult()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalAnyFields decodes a result into a struct whose fields
// of type any and []any hold maps, which Unmarshal decodes as Decode does.
func BenchmarkUnmarshalAnyFields(b *testing.B) {
	type result struct {
		Meta  any   `msgpack:"meta"`
		Items []any `msgpack:"items"`
	}
	data := mapsResult()
	b.ReportAllocs()
	for b.Loop() {
		var r result
		if err := Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
	}
}
