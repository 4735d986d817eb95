package zmqx

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <string.h>

// gate_recv_head receives the first one or two parts of a message into
// dst0 and dst1 (capacity cap each; sizes in sz[0], sz[1], possibly more
// than cap) and copies the metadata property prop (the ZAP User-Id, say)
// of the last part read into val (capacity vcap, NUL-terminated; empty
// when absent). The second part is read only when the first has more.
// It returns the number of parts read, with *more set when parts follow,
// or -1 with *err set to errno (only the first part can fail).
static int gate_recv_head(void *s, char *dst0, char *dst1, size_t cap, size_t *sz, const char *prop, char *val, size_t vcap, int flags, int *more, int *err) {
	char *dst[2] = {dst0, dst1};
	val[0] = 0;
	*more = 0;
	int n = 0;
	for (; n < 2; n++) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		int rc;
		do {
			rc = zmq_msg_recv(&m, s, flags);
		} while (rc < 0 && errno == EINTR);
		if (rc < 0) {
			*err = errno;
			zmq_msg_close(&m);
			return n > 0 ? n : -1;
		}
		sz[n] = zmq_msg_size(&m);
		memcpy(dst[n], zmq_msg_data(&m), sz[n] < cap ? sz[n] : cap);
		// A ROUTER that prefetched the message while polling gives its
		// routing id part no metadata: the second part has it.
		const char *v = zmq_msg_gets(&m, prop);
		if (v != NULL) {
			strncpy(val, v, vcap - 1);
			val[vcap - 1] = 0;
		}
		*more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		if (!*more) {
			return n + 1;
		}
	}
	return n;
}
*/
import "C"

import (
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// PropUserID is the metadata property that carries the user id a ZAP
// handler returned for the connection (RFC 27), such as the Z85 public
// key of a CURVE peer.
const PropUserID = "User-Id"

// headCap bounds each of the parts RecvHead reads: a ROUTER's routing id
// is at most 255 bytes in libzmq.
const headCap = 256

var cPropUserID = C.CString(PropUserID) // never freed: one per process

// RecvHead reads the first two parts of the next message without blocking
// (EAGAIN when there is none; one part if the message has one) together
// with the connection's ZAP User-Id ("" when it has none, as with plain
// or inproc peers). It is meant for a ROUTER, whose messages start with
// the routing id and, in the Majordomo protocol, an empty delimiter: a
// part longer than 256 bytes is truncated to 256 (such a message is
// malformed either way). more reports whether parts follow; read them
// with RecvMessage, which returns the rest of the same message.
func RecvHead(s *zmq.Socket) (head [][]byte, userID string, more bool, err error) {
	raw := rawSocket(s)
	if raw == nil {
		return recvHeadSlow(s)
	}
	var buf [2][headCap]byte
	var sz [2]C.size_t
	var val [256]C.char
	var cmore, cerr C.int
	n := int(C.gate_recv_head(raw, (*C.char)(unsafe.Pointer(&buf[0][0])), (*C.char)(unsafe.Pointer(&buf[1][0])), headCap,
		&sz[0], cPropUserID, &val[0], C.size_t(len(val)), C.int(zmq.DONTWAIT), &cmore, &cerr))
	if n < 0 {
		if syscall.Errno(cerr) == syscall.EAGAIN {
			return nil, "", false, errAgain
		}
		return nil, "", false, zmq.Errno(cerr)
	}
	head = make([][]byte, n)
	for i := range n {
		head[i] = append([]byte(nil), buf[i][:min(int(sz[i]), headCap)]...)
	}
	return head, C.GoString(&val[0]), cmore != 0, nil
}

// recvHeadSlow is RecvHead with zmq4's calls.
func recvHeadSlow(s *zmq.Socket) (head [][]byte, userID string, more bool, err error) {
	for len(head) < 2 {
		b, md, err := s.RecvBytesWithMetadata(zmq.DONTWAIT, PropUserID)
		if err != nil {
			if len(head) > 0 {
				return head, userID, false, nil
			}
			return nil, "", false, err
		}
		head = append(head, b[:min(len(b), headCap)])
		if v := md[PropUserID]; v != "" {
			userID = v
		}
		if more, err = s.GetRcvmore(); err != nil || !more {
			return head, userID, false, err
		}
	}
	return head, userID, true, nil
}
