package wiretest

import "encoding/binary"

// EncodeMultipart packs frames into one fuzz input: each frame is a uvarint
// length followed by its bytes.
func EncodeMultipart(frames [][]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// DecodeMultipart is the inverse of EncodeMultipart and maps every input to
// some frames: a bad or oversized length makes the rest of the input the
// last frame.
func DecodeMultipart(b []byte) [][]byte {
	var frames [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			frames = append(frames, b)
			break
		}
		frames = append(frames, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return frames
}
