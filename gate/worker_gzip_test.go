package gate

import (
	"bytes"
	"context"
	"testing"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// A HugeData reply in gzip is zlib's deflate, byte for byte what a
// Python sender makes, towards a peer that asked for nothing (0.2.12), and
// Go's faster deflate towards a gate client (it announced gate.chunk).
// Both decode to the value.
func TestWorkerGzipPerPeer(t *testing.T) {
	value := bytes.Repeat([]byte("gaterpc HugeData, compressible text. "), 20000)
	b := newFakeBackend(t)
	svc := mustService(t, "F")
	mustOK(t, Func1(svc, "text", func(context.Context, int) (HugeValue, error) { return Huge(value), nil }))
	startWorker(t, b, svc)
	b.expectReady()
	enc, _ := codec.Marshal(value)
	var zlib bytes.Buffer
	zw, _ := chunk.Gzip{}.NewWriter(&zlib, 1)
	_, _ = zw.Write(enc)
	_ = zw.Close()
	sizes := map[string]int{}
	for _, tc := range []struct {
		name string
		rid  []byte
	}{
		{"0.2.12", []byte("plain")},
		{"gate", flowRID("k", map[string]string{wire.MetaChunk: "65536"})},
	} {
		body, _ := codec.EncodeRequestBody("text", []any{0}, nil)
		b.request([]byte("c1"), tc.rid, body...)
		var chunks [][]byte
		for {
			kind, c := b.replyFor(tc.rid)
			if kind == wire.ReplyHugeEnd {
				break
			}
			chunks = append(chunks, c)
		}
		all := bytes.Join(chunks, nil)
		raw, err := chunk.Join(chunks)
		if err != nil || !bytes.Equal(raw, enc) {
			t.Fatalf("%s: the reply does not decode to the value: %v", tc.name, err)
		}
		sizes[tc.name] = len(all)
		// Past the header's MTIME the zlib member is reproducible.
		if same := bytes.Equal(all[10:], zlib.Bytes()[10:]); same != (tc.name == "0.2.12") {
			t.Errorf("%s: zlib's bytes = %v, want %v", tc.name, same, tc.name == "0.2.12")
		}
	}
	t.Logf("gzip sizes: %v (value %d bytes)", sizes, len(enc))
}
