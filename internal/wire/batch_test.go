package wire

import (
	"bytes"
	"testing"
)

func TestParseBatch(t *testing.T) {
	for s, want := range map[string]int{"2": 2, "128": 128, "1024": 1024, "1": 0, "1025": 0, "": 0, "x": 0, "-4": 0} {
		n, err := ParseBatch(s)
		if (err == nil) != (want != 0) || n != want {
			t.Errorf("ParseBatch(%q) = %d, %v; want %d", s, n, err, want)
		}
	}
}

// TestStreamBatchBody: a batch classifies as a stream item whose payload
// is the concatenated items, and no other body reads as a batch.
func TestStreamBatchBody(t *testing.T) {
	items := []byte{0x01, 0x02, 0xa1, 'x'}
	body := StreamBatchBody(items)
	if kind, payload := ClassifyReply(body); kind != ReplyStreamItem || !bytes.Equal(payload, items) || !IsStreamBatch(body) {
		t.Fatalf("ClassifyReply(batch) = %v %x, batch %v", kind, payload, IsStreamBatch(body))
	}
	for name, b := range map[string][][]byte{
		"item":  StreamItemBody([]byte{0x01}),
		"error": StreamErrorBody([]byte{0x93, 0xc0, 0xc0, 0xc0}),
		"end":   StreamEndBody(),
		"chunk": HugeChunkBody([]byte{1, 2}),
	} {
		if IsStreamBatch(b) {
			t.Errorf("%s reads as a batch", name)
		}
	}
	if kind, _ := ClassifyReply([][]byte{tagHuge, tagStreamBatch, items}); kind != ReplyUnknown {
		t.Errorf("a batch under the HugeData tag is %v, want unknown", kind)
	}
	if kind, _ := ClassifyReply([][]byte{tagStream, tagStreamBatch, items, items}); kind != ReplyUnknown {
		t.Errorf("a batch with an extra frame is %v, want unknown", kind)
	}
}
