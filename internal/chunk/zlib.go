package chunk

/*
#cgo LDFLAGS: -lz
#include <stdlib.h>
#include <zlib.h>

// gate_deflate_new allocates a z_stream in C memory for raw deflate (no
// zlib or gzip wrapper) at level, with zlib's window 15 and memLevel 8,
// as Python's zlib.compressobj(level, DEFLATED, -15) has them.
static z_stream *gate_deflate_new(int level, int *rc) {
	z_stream *s = calloc(1, sizeof(z_stream));
	if (s == NULL) {
		*rc = Z_MEM_ERROR;
		return NULL;
	}
	*rc = deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	if (*rc != Z_OK) {
		free(s);
		return NULL;
	}
	return s;
}

// gate_deflate runs deflate over in[0:in_len] into out[0:out_cap] with
// flush and reports how much input it consumed and output it produced.
static int gate_deflate(z_stream *s, unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap,
		int flush, size_t *used, size_t *made) {
	s->next_in = in;
	s->avail_in = (uInt)in_len;
	s->next_out = out;
	s->avail_out = (uInt)out_cap;
	int rc = deflate(s, flush);
	*used = in_len - s->avail_in;
	*made = out_cap - s->avail_out;
	s->next_in = NULL;
	s->next_out = NULL;
	return rc;
}

static void gate_deflate_free(z_stream *s) {
	deflateEnd(s);
	free(s);
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"time"
	"unsafe"
)

// zlibGzip writes one gzip member the way gaterpc 0.2.12 does: its own
// 10-byte header (FLG 0, MTIME, XFL 04 at level 1 and 02 at level 9,
// OS ff), raw deflate from the C zlib library with Python's parameters,
// and the CRC-32/ISIZE trailer. With the same zlib, level and input the
// bytes are Python's.
type zlibGzip struct {
	w     io.Writer
	h     *zstreamHandle
	out   []byte
	crc   uint32
	size  uint32
	err   error
	wrote bool // header written
	mtime uint32
	level int
}

// zstreamHandle owns the C stream; a cleanup frees it if the writer is
// dropped without Close (an aborted send).
type zstreamHandle struct{ s *C.z_stream }

func (h *zstreamHandle) free() {
	if h.s != nil {
		C.gate_deflate_free(h.s)
		h.s = nil
	}
}

// zlibOutSize is the output buffer of one deflate call.
const zlibOutSize = 64 << 10

func newZlibGzip(w io.Writer, level int, now time.Time) (*zlibGzip, error) {
	var rc C.int
	s := C.gate_deflate_new(C.int(level), &rc)
	if s == nil {
		return nil, fmt.Errorf("%w: zlib deflateInit2(level %d): %d", ErrInvalidOption, level, int(rc))
	}
	var mtime uint32
	if t := now.Unix(); t > 0 && t <= 0xffffffff {
		mtime = uint32(t)
	}
	z := &zlibGzip{w: w, h: &zstreamHandle{s: s}, out: make([]byte, zlibOutSize), mtime: mtime, level: level}
	runtime.AddCleanup(z, (*zstreamHandle).free, z.h)
	return z, nil
}

func (z *zlibGzip) header() error {
	z.wrote = true
	h := [10]byte{0x1f, 0x8b, 8, 0}
	binary.LittleEndian.PutUint32(h[4:8], z.mtime)
	switch z.level {
	case 1:
		h[8] = 4
	case 9:
		h[8] = 2
	}
	h[9] = 0xff
	_, err := z.w.Write(h[:])
	return err
}

// run deflates p (nil with Z_FINISH) and writes what comes out.
func (z *zlibGzip) run(p []byte, flush C.int) error {
	for {
		var in *C.uchar
		if len(p) > 0 {
			in = (*C.uchar)(unsafe.Pointer(&p[0]))
		}
		var used, made C.size_t
		rc := C.gate_deflate(z.h.s, in, C.size_t(len(p)), (*C.uchar)(unsafe.Pointer(&z.out[0])), C.size_t(len(z.out)), flush, &used, &made)
		if rc != C.Z_OK && rc != C.Z_STREAM_END && rc != C.Z_BUF_ERROR {
			return fmt.Errorf("chunk: zlib deflate: %d", int(rc))
		}
		if made > 0 {
			if _, err := z.w.Write(z.out[:made]); err != nil {
				return err
			}
		}
		p = p[used:]
		if flush == C.Z_FINISH {
			if rc == C.Z_STREAM_END {
				return nil
			}
			continue
		}
		if len(p) == 0 && made < C.size_t(len(z.out)) {
			return nil
		}
	}
}

// Write compresses p.
func (z *zlibGzip) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.h.s == nil {
		return 0, errors.New("chunk: write after Close")
	}
	if !z.wrote {
		if z.err = z.header(); z.err != nil {
			return 0, z.err
		}
	}
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(len(p))
	// Feed at most 1 GiB per call: avail_in is 32-bit.
	for q := p; len(q) > 0; {
		n := min(len(q), 1<<30)
		if z.err = z.run(q[:n], C.Z_NO_FLUSH); z.err != nil {
			return 0, z.err
		}
		q = q[n:]
	}
	return len(p), nil
}

// Close finishes the member and frees the C stream. It does not close
// the underlying writer.
func (z *zlibGzip) Close() error {
	if z.h.s == nil {
		return z.err
	}
	defer z.h.free()
	if z.err != nil {
		return z.err
	}
	if !z.wrote {
		if z.err = z.header(); z.err != nil {
			return z.err
		}
	}
	if z.err = z.run(nil, C.Z_FINISH); z.err != nil {
		return z.err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], z.size)
	_, z.err = z.w.Write(t[:])
	return z.err
}
