package zmqx

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>

// gate_discard_rest receives and closes the remaining parts of a message
// whose last received part had the more flag set, without copying them.
static void gate_discard_rest(void *s) {
	zmq_msg_t m;
	zmq_msg_init(&m);
	for (;;) {
		int rc;
		do {
			rc = zmq_msg_recv(&m, s, ZMQ_DONTWAIT);
		} while (rc < 0 && errno == EINTR);
		if (rc < 0 || !zmq_msg_more(&m)) {
			break;
		}
	}
	zmq_msg_close(&m);
}

// gate_recv_parts receives the parts of one message, at most max, into
// msgs and their sizes into sizes. It returns how many parts it received,
// with *more set when parts remain, or -1 with *err set to errno when a
// part cannot be received (the parts already received are closed).
//
// *nframes and *nbytes count the parts and bytes of the message received
// so far (by earlier calls too). When a part takes them past max_frames or
// max_bytes (0: no limit), the parts received are closed, the rest of the
// message is received and discarded here, and it returns -2 with *err set
// to 1 (too many frames) or 2 (too many bytes): an over-limit message
// never reaches Go memory.
static int gate_recv_parts(void *s, zmq_msg_t *msgs, size_t *sizes, int max, int flags,
		long long *nframes, long long *nbytes, long long max_frames, long long max_bytes, int *more, int *err) {
	*more = 0;
	for (int n = 0; n < max; n++) {
		zmq_msg_init(&msgs[n]);
		int rc;
		do {
			rc = zmq_msg_recv(&msgs[n], s, flags);
		} while (rc < 0 && errno == EINTR);
		if (rc < 0) {
			*err = errno;
			for (int i = 0; i <= n; i++) {
				zmq_msg_close(&msgs[i]);
			}
			return -1;
		}
		sizes[n] = zmq_msg_size(&msgs[n]);
		*nframes += 1;
		*nbytes += (long long)sizes[n];
		int reason = 0;
		if (max_frames > 0 && *nframes > max_frames) {
			reason = 1;
		} else if (max_bytes > 0 && *nbytes > max_bytes) {
			reason = 2;
		}
		if (reason) {
			int rest = zmq_msg_more(&msgs[n]);
			for (int i = 0; i <= n; i++) {
				zmq_msg_close(&msgs[i]);
			}
			if (rest) {
				gate_discard_rest(s);
			}
			*err = reason;
			return -2;
		}
		if (!zmq_msg_more(&msgs[n])) {
			return n + 1;
		}
	}
	*more = 1;
	return max;
}

// gate_copy_parts copies the n parts of msgs back to back into dst (which
// holds their total size) and closes them.
static void gate_copy_parts(zmq_msg_t *msgs, int n, char *dst) {
	for (int i = 0; i < n; i++) {
		size_t sz = zmq_msg_size(&msgs[i]);
		if (sz > 0) {
			memcpy(dst, zmq_msg_data(&msgs[i]), sz);
			dst += sz;
		}
		zmq_msg_close(&msgs[i]);
	}
}

// gate_copy_small copies the parts of msgs smaller than own bytes back to
// back into dst (which holds their total size); it closes none.
static void gate_copy_small(zmq_msg_t *msgs, int n, char *dst, size_t own) {
	for (int i = 0; i < n; i++) {
		size_t sz = zmq_msg_size(&msgs[i]);
		if (sz > 0 && sz < own) {
			memcpy(dst, zmq_msg_data(&msgs[i]), sz);
			dst += sz;
		}
	}
}

// gate_recv_into is gate_recv_parts followed, when the parts received
// fit in dst (cap bytes), by gate_copy_parts into dst: one cgo call for a
// message that fits. *copied reports whether the parts were copied (and
// closed); otherwise they are left open for the caller.
//
// The socket is passed as an integer: it is C memory, and a pointer
// argument would cost a cgo pointer check per call.
static int gate_recv_into(uintptr_t sock, zmq_msg_t *msgs, size_t *sizes, int max, int flags,
		long long *nframes, long long *nbytes, long long max_frames, long long max_bytes, int *more, int *err,
		char *dst, size_t cap, int *copied) {
	void *s = (void *)sock;
	*copied = 0;
	int n = gate_recv_parts(s, msgs, sizes, max, flags, nframes, nbytes, max_frames, max_bytes, more, err);
	if (n <= 0) {
		return n;
	}
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		total += sizes[i];
	}
	if (total <= cap) {
		gate_copy_parts(msgs, n, dst);
		*copied = 1;
	}
	return n;
}

// gate_close_parts closes the n parts of msgs.
static void gate_close_parts(zmq_msg_t *msgs, int n) {
	for (int i = 0; i < n; i++) {
		zmq_msg_close(&msgs[i]);
	}
}

// gate_send_parts sends the n parts laid back to back in buf (sizes[i]
// bytes each) as one message, all but the last with ZMQ_SNDMORE. It
// returns 0, or -1 with *err set to errno. A ROUTER with ROUTER_MANDATORY
// reports EAGAIN and EHOSTUNREACH on the first part, so a failed message
// is not half sent. The socket is passed as an integer, as for
// gate_recv_into.
static int gate_send_parts(uintptr_t sock, const char *buf, const size_t *sizes, int n, int flags, int *err) {
	for (int i = 0; i < n; i++) {
		int f = flags;
		if (i < n - 1) {
			f |= ZMQ_SNDMORE;
		}
		int rc;
		do {
			rc = zmq_send((void *)sock, buf, sizes[i], f);
		} while (rc < 0 && errno == EINTR);
		if (rc < 0) {
			*err = errno;
			return -1;
		}
		buf += sizes[i];
	}
	return 0;
}
*/
import "C"

import (
	"errors"
	"reflect"
	"sync"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// maxParts is how many parts of a message one cgo call takes. The
// protocol's longest message, a REQUEST from the broker to a worker, has
// 10 (9 at the worker's DEALER). Longer messages (only garbage) take
// further calls of up to 16 parts each.
const maxParts = 16

// recvScratch holds the libzmq messages of one receive between its two
// cgo calls. zmq_msg_t is plain bytes to Go, so the array may live in Go
// memory (heap, not moved) and be handed to C.
type recvScratch struct {
	msgs        [maxParts]C.zmq_msg_t
	sizes       [maxParts]C.size_t
	nframes     C.longlong // parts and bytes of the message so far
	nbytes      C.longlong
	more, errno C.int // out parameters, here so that they do not escape
}

var scratchPool = sync.Pool{New: func() any { return new(recvScratch) }}

// rawOK reports whether zmq.Socket holds the libzmq socket handle in a
// field soc unsafe.Pointer and its state in opened bool, as in pebbe/zmq4
// v1.4, at socOffset and openedOffset. If a new version changes that,
// RecvMessage and SendMessage fall back to the package's own calls.
var socOffset, openedOffset, rawOK = func() (uintptr, uintptr, bool) {
	t := reflect.TypeFor[zmq.Socket]()
	soc, ok1 := t.FieldByName("soc")
	opened, ok2 := t.FieldByName("opened")
	ok := ok1 && ok2 && soc.Type.Kind() == reflect.UnsafePointer && opened.Type.Kind() == reflect.Bool
	return soc.Offset, opened.Offset, ok
}()

// rawSocket returns s's libzmq handle, or nil when s is closed or the
// layout is unknown.
func rawSocket(s *zmq.Socket) unsafe.Pointer {
	if !rawOK || s == nil {
		return nil
	}
	base := unsafe.Pointer(s)
	if !*(*bool)(unsafe.Add(base, openedOffset)) {
		return nil
	}
	return *(*unsafe.Pointer)(unsafe.Add(base, socOffset))
}

var errAgain error = zmq.Errno(syscall.EAGAIN)

// Limits bounds one inbound message. Zero fields mean no limit.
type Limits struct {
	MaxFrames int   // parts per message
	MaxBytes  int64 // total size of all parts
}

// ErrTooManyFrames and ErrTooLarge are returned by RecvMessageLimit for a
// message over its Limits. The message has been received and discarded
// inside libzmq (nothing of it was copied into Go memory); the next call
// reads the next message.
var (
	ErrTooManyFrames = errors.New("zmqx: message has too many frames")
	ErrTooLarge      = errors.New("zmqx: message too large")
)

// RecvMessage reads one multipart message without blocking (EAGAIN when
// there is none). It is RecvMessageLimit with no limits.
func RecvMessage(s *zmq.Socket) ([][]byte, error) { return RecvMessageLimit(s, Limits{}) }

// RecvMessageLimit reads one multipart message without blocking (EAGAIN
// when there is none) and checks lim as the parts arrive: a message with
// more parts or bytes than lim allows is discarded part by part inside C
// and reported as ErrTooManyFrames or ErrTooLarge, so its size never costs
// Go memory (libzmq has buffered it already: ZMQ_MAXMSGSIZE bounds each
// part there).
//
// It takes up to 16 parts with two cgo calls, where zmq4's
// RecvMessageBytes makes six per part (init, receive, data, copy, close,
// and a getsockopt for RCVMORE) and five allocations; longer messages
// take two more per 16 parts. The frames of each batch share one buffer,
// each capped at its length so that appending to one cannot overwrite the
// next; a frame of 32 KiB or more has a buffer of its own (one more cgo
// call per such frame, plus one per batch that has any). Only the first part can give EAGAIN: the rest of a multipart
// message is delivered atomically with it.
func RecvMessageLimit(s *zmq.Socket, lim Limits) ([][]byte, error) {
	raw := rawSocket(s)
	if raw == nil {
		return recvMessageSlow(s, lim)
	}
	sc := scratchPool.Get().(*recvScratch)
	defer scratchPool.Put(sc)
	var msg [][]byte
	sc.nframes, sc.nbytes = 0, 0
	for {
		n := int(C.gate_recv_parts(raw, &sc.msgs[0], &sc.sizes[0], maxParts, C.int(zmq.DONTWAIT),
			&sc.nframes, &sc.nbytes, C.longlong(lim.MaxFrames), C.longlong(lim.MaxBytes), &sc.more, &sc.errno))
		switch n {
		case -1:
			if syscall.Errno(sc.errno) == syscall.EAGAIN {
				return nil, errAgain
			}
			return nil, zmq.Errno(sc.errno)
		case -2:
			if sc.errno == 1 {
				return nil, ErrTooManyFrames
			}
			return nil, ErrTooLarge
		}
		if msg == nil {
			msg = make([][]byte, 0, n)
		}
		msg = appendParts(msg, sc, n)
		if sc.more == 0 {
			return msg, nil
		}
	}
}

// ownBuffer is the size from which a received part gets a buffer of its
// own instead of sharing the message's buffer for small parts.
const ownBuffer = 32 << 10

// appendParts copies the n parts received into sc to msg and closes them.
// Small parts share one buffer. A part of ownBuffer bytes or more gets its
// own, allocated by append, which does not zero the bytes it copies over
// (make would clear them first: BenchmarkRecvMessageChunk in
// docs/performance.md). Such a part's data is never held inside the
// zmq_msg_t, so it is C memory that Go may read until the part is closed.
func appendParts(msg [][]byte, sc *recvScratch, n int) [][]byte {
	total, small := 0, 0
	for _, sz := range sc.sizes[:n] {
		total += int(sz)
		if sz < ownBuffer {
			small += int(sz)
		}
	}
	if small == total {
		buf := make([]byte, total)
		var dst *C.char
		if total > 0 {
			dst = (*C.char)(unsafe.Pointer(&buf[0]))
		}
		C.gate_copy_parts(&sc.msgs[0], C.int(n), dst)
		off := 0
		for _, sz := range sc.sizes[:n] {
			end := off + int(sz)
			msg = append(msg, buf[off:end:end])
			off = end
		}
		return msg
	}
	buf := make([]byte, small)
	if small > 0 {
		C.gate_copy_small(&sc.msgs[0], C.int(n), (*C.char)(unsafe.Pointer(&buf[0])), ownBuffer)
	}
	off := 0
	for i, sz := range sc.sizes[:n] {
		size := int(sz)
		if size >= ownBuffer {
			src := unsafe.Slice((*byte)(C.zmq_msg_data(&sc.msgs[i])), size)
			msg = append(msg, append([]byte(nil), src...))
			continue
		}
		end := off + size
		msg = append(msg, buf[off:end:end])
		off = end
	}
	C.gate_close_parts(&sc.msgs[0], C.int(n))
	return msg
}

// recvMessageSlow reads a message part by part with zmq4's calls (when
// the socket's layout is unknown), checking lim as rawSocket's path does
// but after each copy.
func recvMessageSlow(s *zmq.Socket, lim Limits) ([][]byte, error) {
	var msg [][]byte
	var size int64
	var over error
	for {
		b, err := s.RecvBytes(zmq.DONTWAIT)
		if err != nil {
			return nil, err
		}
		size += int64(len(b))
		if over == nil {
			switch {
			case lim.MaxFrames > 0 && len(msg)+1 > lim.MaxFrames:
				over, msg = ErrTooManyFrames, nil
			case lim.MaxBytes > 0 && size > lim.MaxBytes:
				over, msg = ErrTooLarge, nil
			default:
				msg = append(msg, b)
			}
		}
		more, err := s.GetRcvmore()
		if err != nil {
			return nil, err
		}
		if !more {
			if over != nil {
				return nil, over
			}
			return msg, nil
		}
	}
}

// sendScratch lays out one outgoing message for gate_send_parts.
type sendScratch struct {
	buf   []byte
	sizes [maxParts]C.size_t
	errno C.int
}

// sendInline is the largest message SendMessage copies into its scratch
// buffer to send with one cgo call; larger ones go part by part (the copy
// would cost more than the calls it saves).
const sendInline = 16 << 10

var sendPool = sync.Pool{New: func() any { return &sendScratch{buf: make([]byte, 0, sendInline)} }}

// SendMessage sends frames as one multipart message without blocking
// (zmq.DONTWAIT): EAGAIN when the pipe is full. A message of up to 16
// frames and 16 KiB goes out with one cgo call, where zmq4's SendMessage
// makes one per frame (and boxes each frame in an interface).
func SendMessage(s *zmq.Socket, frames [][]byte) error {
	sc := sendPool.Get().(*sendScratch)
	defer sendPool.Put(sc)
	return sc.send(s, frames)
}

// Sender is SendMessage with scratch storage of its own instead of a
// pool's, for the one goroutine that owns it. Its zero value is ready.
type Sender struct{ sc sendScratch }

// Send is SendMessage.
func (x *Sender) Send(s *zmq.Socket, frames [][]byte) error { return x.sc.send(s, frames) }

func (sc *sendScratch) send(s *zmq.Socket, frames [][]byte) error {
	raw := rawSocket(s)
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	if raw == nil || len(frames) == 0 || len(frames) > maxParts || total > sendInline {
		return sendMessageSlow(s, frames)
	}
	b := sc.buf[:0]
	for i, f := range frames {
		b = append(b, f...)
		sc.sizes[i] = C.size_t(len(f))
	}
	sc.buf = b[:0] // kept for the next message
	var p *C.char
	if len(b) > 0 {
		p = (*C.char)(unsafe.Pointer(&b[0]))
	}
	if C.gate_send_parts(C.uintptr_t(uintptr(raw)), p, &sc.sizes[0], C.int(len(frames)), C.int(zmq.DONTWAIT), &sc.errno) < 0 {
		if syscall.Errno(sc.errno) == syscall.EAGAIN {
			return errAgain
		}
		return zmq.Errno(sc.errno)
	}
	return nil
}

// sendMessageSlow sends frames part by part with zmq4's calls.
func sendMessageSlow(s *zmq.Socket, frames [][]byte) error {
	last := len(frames) - 1
	for i, f := range frames {
		flag := zmq.DONTWAIT
		if i < last {
			flag |= zmq.SNDMORE
		}
		if _, err := s.SendBytes(f, flag); err != nil {
			return err
		}
	}
	return nil
}

// Receiver receives messages into storage it reuses: the frames a Recv
// returns, and the slice holding them, stay valid only until the next
// Recv on the same Receiver. A loop that forwards what it receives and
// copies only what it keeps receives with no allocation per message in
// steady state. A Receiver belongs to one goroutine; its zero value is
// ready to use.
type Receiver struct {
	sc     recvScratch
	copied C.int
	buf    []byte
	frames [][]byte
}

// maxKeep bounds the buffer a Receiver keeps between messages: a message
// whose parts do not fit in it gets storage of its own (as with
// RecvMessageLimit), so that one huge message does not pin its size.
const maxKeep = 1 << 20

// Recv reads one multipart message without blocking (EAGAIN when there is
// none), checking lim as RecvMessageLimit does. A message of up to 16
// parts that fits the Receiver's buffer takes one cgo call: the parts are
// received and copied in the same call. The frames are capped at their
// lengths, so appending to one cannot overwrite the next.
func (r *Receiver) Recv(s *zmq.Socket, lim Limits) ([][]byte, error) {
	raw := rawSocket(s)
	if raw == nil {
		return recvMessageSlow(s, lim)
	}
	sc := &r.sc
	sc.nframes, sc.nbytes = 0, 0
	clear(r.frames)
	msg := r.frames[:0]
	buf := r.buf[:cap(r.buf)]
	off := 0
	for {
		var dst *C.char
		if off < len(buf) {
			dst = (*C.char)(unsafe.Pointer(&buf[off]))
		}
		n := int(C.gate_recv_into(C.uintptr_t(uintptr(raw)), &sc.msgs[0], &sc.sizes[0], maxParts, C.int(zmq.DONTWAIT),
			&sc.nframes, &sc.nbytes, C.longlong(lim.MaxFrames), C.longlong(lim.MaxBytes), &sc.more, &sc.errno,
			dst, C.size_t(len(buf)-off), &r.copied))
		switch n {
		case -1:
			r.frames = msg
			if syscall.Errno(sc.errno) == syscall.EAGAIN {
				return nil, errAgain
			}
			return nil, zmq.Errno(sc.errno)
		case -2:
			r.frames = msg
			if sc.errno == 1 {
				return nil, ErrTooManyFrames
			}
			return nil, ErrTooLarge
		}
		total := 0
		for _, sz := range sc.sizes[:n] {
			total += int(sz)
		}
		switch {
		case r.copied != 0:
		case total <= maxKeep:
			// Grow the kept buffer. Frames of earlier batches of this
			// message stay in the old one, which nothing writes again.
			buf = make([]byte, max(total, 2*len(buf), 4<<10))
			r.buf = buf
			off = 0
			if total > 0 {
				C.gate_copy_parts(&sc.msgs[0], C.int(n), (*C.char)(unsafe.Pointer(&buf[0])))
			} else {
				C.gate_close_parts(&sc.msgs[0], C.int(n))
			}
		default:
			msg = appendParts(msg, sc, n)
			if sc.more == 0 {
				r.frames = msg
				return msg, nil
			}
			continue
		}
		for _, sz := range sc.sizes[:n] {
			end := off + int(sz)
			msg = append(msg, buf[off:end:end])
			off = end
		}
		if sc.more == 0 {
			r.frames = msg
			return msg, nil
		}
	}
}
