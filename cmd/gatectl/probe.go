package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// maxProbe bounds the broker probe whatever -timeout says: a broker on a
// reachable host answers a connection within milliseconds.
const maxProbe = 3 * time.Second

// errNoBroker is wrapped by probeBroker's errors.
var errNoBroker = errors.New("no broker answered")

// probeBroker checks, before a command waits for replies, that a ZeroMQ
// peer listens at a tcp:// or ipc:// endpoint: it connects and reads the
// 10-byte ZMTP greeting signature (0xFF, 8 bytes, 0x7F) that libzmq sends
// first on every connection, within timeout. ZeroMQ itself would queue the
// request and wait for a broker until the call's deadline; this turns
// "nothing listens there" into an error at once. Other transports
// (inproc://) are not probed.
func probeBroker(ctx context.Context, endpoint string, timeout time.Duration) error {
	network, addr, ok := strings.Cut(endpoint, "://")
	if !ok {
		return nil
	}
	switch network {
	case "tcp":
		if strings.HasPrefix(addr, "*:") {
			addr = "127.0.0.1" + addr[1:]
		}
		// tcp://source;host:port: the address after the source.
		if i := strings.LastIndexByte(addr, ';'); i >= 0 {
			addr = addr[i+1:]
		}
	case "ipc":
		network = "unix"
		if strings.HasPrefix(addr, "@") { // abstract namespace
			addr = "\x00" + addr[1:]
		}
	default:
		return nil
	}
	timeout = min(timeout, maxProbe)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		reason := err.Error()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			reason = "connection refused: nothing listens there"
		case errors.Is(err, syscall.ENOENT):
			reason = "no such socket file: nothing listens there"
		case errors.Is(err, context.DeadlineExceeded):
			reason = fmt.Sprintf("no connection within %v", timeout)
		}
		return fmt.Errorf("%w at %s: %s (start gate-broker, or set -broker / GATE_BROKER)", errNoBroker, endpoint, reason)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	var greeting [10]byte
	if _, err := io.ReadFull(conn, greeting[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w at %s: something accepts connections there but sent no ZMTP greeting within %v (not a ZeroMQ broker?)", errNoBroker, endpoint, timeout)
		}
		return fmt.Errorf("%w at %s: the connection closed before a ZMTP greeting: %v", errNoBroker, endpoint, err)
	}
	if greeting[0] != 0xFF || greeting[9]&1 != 1 {
		return fmt.Errorf("%w at %s: the peer does not speak ZMTP (greeting %x)", errNoBroker, endpoint, greeting)
	}
	return nil
}
