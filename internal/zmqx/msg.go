package zmqx

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <string.h>

// gate_recv_parts receives the parts of one message, at most max, into
// msgs and their sizes into sizes. It returns how many parts it received,
// with *more set when parts remain, or -1 with *err set to errno when a
// part cannot be received (the parts already received are closed).
static int gate_recv_parts(void *s, zmq_msg_t *msgs, size_t *sizes, int max, int flags, int *more, int *err) {
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

// gate_send_parts sends the n parts laid back to back in buf (sizes[i]
// bytes each) as one message, all but the last with ZMQ_SNDMORE. It
// returns 0, or -1 with *err set to errno. A ROUTER with ROUTER_MANDATORY
// reports EAGAIN and EHOSTUNREACH on the first part, so a failed message
// is not half sent.
static int gate_send_parts(void *s, const char *buf, const size_t *sizes, int n, int flags, int *err) {
	for (int i = 0; i < n; i++) {
		int f = flags;
		if (i < n - 1) {
			f |= ZMQ_SNDMORE;
		}
		int rc;
		do {
			rc = zmq_send(s, buf, sizes[i], f);
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
	"reflect"
	"sync"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// maxParts is how many parts of a message one cgo call takes. The
// protocol's longest message, a REQUEST from the broker to a worker, has
// 10 (9 at the worker's DEALER). Longer messages (only garbage) take the
// rest part by part.
const maxParts = 16

// recvScratch holds the libzmq messages of one receive between its two
// cgo calls. zmq_msg_t is plain bytes to Go, so the array may live in Go
// memory (heap, not moved) and be handed to C.
type recvScratch struct {
	msgs        [maxParts]C.zmq_msg_t
	sizes       [maxParts]C.size_t
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

// RecvMessage reads one multipart message without blocking (EAGAIN when
// there is none). It takes up to 16 parts with two cgo calls per message,
// where zmq4's RecvMessageBytes makes six per part (init, receive, data,
// copy, close, and a getsockopt for RCVMORE) and five allocations. The frames
// share one buffer, each capped at its length so that appending to one
// cannot overwrite the next. Only the first part can give EAGAIN: the
// rest of a multipart message is delivered atomically with it.
func RecvMessage(s *zmq.Socket) ([][]byte, error) {
	raw := rawSocket(s)
	if raw == nil {
		return recvMessageSlow(s, nil)
	}
	sc := scratchPool.Get().(*recvScratch)
	defer scratchPool.Put(sc)
	n := int(C.gate_recv_parts(raw, &sc.msgs[0], &sc.sizes[0], maxParts, C.int(zmq.DONTWAIT), &sc.more, &sc.errno))
	if n < 0 {
		if syscall.Errno(sc.errno) == syscall.EAGAIN {
			return nil, errAgain
		}
		return nil, zmq.Errno(sc.errno)
	}
	total := 0
	for _, sz := range sc.sizes[:n] {
		total += int(sz)
	}
	buf := make([]byte, total)
	var dst *C.char
	if total > 0 {
		dst = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	C.gate_copy_parts(&sc.msgs[0], C.int(n), dst)
	msg := make([][]byte, n)
	off := 0
	for i, sz := range sc.sizes[:n] {
		end := off + int(sz)
		msg[i] = buf[off:end:end]
		off = end
	}
	if sc.more != 0 {
		return recvMessageSlow(s, msg)
	}
	return msg, nil
}

// recvMessageSlow reads the (rest of the) message part by part with
// zmq4's calls, appending to msg.
func recvMessageSlow(s *zmq.Socket, msg [][]byte) ([][]byte, error) {
	for {
		b, err := s.RecvBytes(zmq.DONTWAIT)
		if err != nil {
			return nil, err
		}
		if msg == nil {
			msg = make([][]byte, 0, maxParts)
		}
		msg = append(msg, b)
		more, err := s.GetRcvmore()
		if err != nil {
			return nil, err
		}
		if !more {
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
	raw := rawSocket(s)
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	if raw == nil || len(frames) == 0 || len(frames) > maxParts || total > sendInline {
		return sendMessageSlow(s, frames)
	}
	sc := sendPool.Get().(*sendScratch)
	defer sendPool.Put(sc)
	b := sc.buf[:0]
	for i, f := range frames {
		b = append(b, f...)
		sc.sizes[i] = C.size_t(len(f))
	}
	var p *C.char
	if len(b) > 0 {
		p = (*C.char)(unsafe.Pointer(&b[0]))
	}
	if C.gate_send_parts(raw, p, &sc.sizes[0], C.int(len(frames)), C.int(zmq.DONTWAIT), &sc.errno) < 0 {
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
