package zmqx

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>

static int gate_socket_type(void *s, int *typ) {
	size_t n = sizeof(int);
	return zmq_getsockopt(s, ZMQ_TYPE, typ, &n);
}
*/
import "C"

import (
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// zmq4Version is the pebbe/zmq4 release whose zmq.Socket layout rawSocket
// reads (fields soc and opened). TestZmq4LayoutPinned fails when go.mod
// names another version, so that an upgrade is checked by hand, and
// TestRawSocketIsTheSocket fails when the handle read is not the socket's.
const zmq4Version = "v1.4.0"

// rawSocketType asks libzmq for the type of the handle rawSocket reads
// from s: the check that the unsafe read found the real socket.
func rawSocketType(s *zmq.Socket) (zmq.Type, bool) {
	raw := rawSocket(s)
	if raw == nil {
		return 0, false
	}
	var typ C.int
	if C.gate_socket_type(unsafe.Pointer(raw), &typ) != 0 {
		return 0, false
	}
	return zmq.Type(typ), true
}
