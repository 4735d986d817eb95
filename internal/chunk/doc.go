// Package chunk implements HugeData payloads: a msgpack-encoded value that is
// compressed and cut into fixed-size chunks, each sent as the body of one
// GateStreamHugData reply (docs/wire-protocol.md section 7). It does no socket I/O;
// the caller frames the chunks and the HugeDataEND marker.
//
// The sender side is [Sender], an io.WriteCloser that compresses whatever is
// written to it and hands out chunks of exactly [DefaultChunkSize] bytes (the
// last one shorter), then an empty chunk as gaterpc 0.2.12 does:
//
//	s, err := chunk.NewSender(func(c []byte) error {
//		return w.Send(ctx, hugeFrame(c)) // c may be retained
//	})
//	if err != nil {
//		return err
//	}
//	if err := msgpack.NewEncoder(s).Encode(value); err != nil {
//		s.Abort()
//		return err
//	}
//	return s.Close()
//
// With [WithPipeline] the Sender hands chunks to emit on a goroutine of its
// own while the caller goes on compressing, a bounded number of chunks
// ahead; a worker uses it so that compression continues while a chunk
// waits for the socket or for the reader's flow-control credit.
//
// The receiver side is [Assembler], which ignores empty chunks, detects the
// format from its magic number ([Sniff]), decompresses incrementally, verifies
// checksums and enforces caps on decompressed and compressed size, so a
// decompression bomb fails with [ErrTooLarge] without allocating past the cap.
// [Split] and [Join] are the one-shot forms.
//
// The default format is gzip at level 1, byte-compatible in layout with the
// gaterpc 0.2.12 sender: header 1f 8b 08 00 MTIME XFL ff with FLG 0, raw
// deflate, CRC-32 and ISIZE (the deflate bytes differ from zlib's, so compare
// decompressed values, not compressed bytes). The compressed format is not
// signalled on the wire; Python peers understand "gzip", "bz2" (bzip2) and
// "lzma" (xz). "zstd" is for Go peers. More formats can be added with
// [Register].
//
// Registry functions are safe for concurrent use; a Sender or an Assembler
// is used by one goroutine at a time.
package chunk
