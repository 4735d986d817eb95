package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/keys"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// AnyKey in an allow-list (WithClientKeys, WithWorkerKeys, a key list
// file) accepts every CURVE key: the connection is encrypted, but anyone
// who knows the server's public key may connect.
const AnyKey = "*"

// ZAPEndpoint is where the broker's ZAP handler binds, in the broker's
// ZeroMQ context (RFC 27). One context has at most one ZAP handler: two
// CURVE brokers cannot share a context.
const ZAPEndpoint = "inproc://zeromq.zap.01"

// Reasons of Stats.AuthFailures ("socket/reason").
const (
	AuthUnknownKey        = "unknown_key"         // CURVE key not in the socket's allow-list
	AuthMechanism         = "mechanism"           // a plain (NULL) or PLAIN peer on a CURVE socket
	AuthCrypto            = "crypto"              // CURVE handshake failed: wrong server key or garbage
	AuthHandshake         = "handshake"           // any other failed handshake
	AuthServiceNotAllowed = "service_not_allowed" // READY for a service the worker's key may not serve
	AuthKeyMismatch       = "key_mismatch"        // a registered worker's routing id used by another key
)

// AuthFailureReasons lists every reason of Stats.AuthFailures, for
// exporters that initialise counters at zero.
var AuthFailureReasons = []string{AuthUnknownKey, AuthMechanism, AuthCrypto, AuthHandshake,
	AuthServiceNotAllowed, AuthKeyMismatch}

// AuthorizedKey is one entry of an allow-list: a CURVE public key (Z85,
// or AnyKey) and, for workers, the services it may serve (none: any).
type AuthorizedKey struct {
	Key      string
	Services []string
}

type secOptions struct {
	secret, public string
	front, back    bool // CURVE on the socket
	clients        []AuthorizedKey
	workers        []AuthorizedKey
	clientsSet     bool
	workersSet     bool
}

// WithCurve turns on CURVE encryption and authentication on the frontend
// and the backend (see WithCurveSockets): the broker is a CURVE server
// with the key pair of secretKey (Z85; the public key, which clients and
// workers need, is derived from it, see gate.KeyPairFromSecret). Peers
// are admitted by the allow-lists WithClientKeys and WithWorkerKeys,
// which are then required. A peer that fails the handshake or is not
// listed gets nothing (its connection is dropped) and is counted in
// Stats.AuthFailures. CURVE does not apply to inproc:// endpoints: peers
// in the same process are trusted. libzmq must support CURVE
// (gate.ErrNoCurve otherwise).
func WithCurve(secretKey string) Option {
	return optionFunc(func(o *options) error {
		if err := gate.CheckKey(secretKey); err != nil {
			return fmt.Errorf("broker: CURVE secret key: %w", err)
		}
		if !zmq.HasCurve() {
			return gate.ErrNoCurve
		}
		kp, err := gate.KeyPairFromSecret(secretKey)
		if err != nil {
			return fmt.Errorf("broker: CURVE secret key: %w", err)
		}
		o.sec.secret, o.sec.public = kp.Secret, kp.Public
		o.sec.front, o.sec.back = true, true
		return nil
	})
}

// WithCurveSockets chooses which sockets use CURVE once WithCurve is set
// (default: both). Leaving the frontend plain serves 0.2.12 Python
// clients while workers are authenticated; a plain socket on a
// non-loopback address is logged at Warn when the broker starts.
func WithCurveSockets(frontend, backend bool) Option {
	return optionFunc(func(o *options) error {
		if o.sec.secret == "" {
			return invalid("WithCurveSockets before WithCurve")
		}
		o.sec.front, o.sec.back = frontend, backend
		return nil
	})
}

// WithClientKeys adds client public keys (Z85) to the frontend's
// allow-list; AnyKey admits every key. Repeated calls append.
func WithClientKeys(keys ...string) Option {
	return optionFunc(func(o *options) error {
		for _, k := range keys {
			if k != AnyKey {
				if err := gate.CheckKey(k); err != nil {
					return fmt.Errorf("broker: client key: %w", err)
				}
			}
			o.sec.clients = append(o.sec.clients, AuthorizedKey{Key: k})
		}
		o.sec.clientsSet = true
		return nil
	})
}

// WithWorkerKeys adds entries to the backend's allow-list. An entry with
// Services may register (READY) only for those services: a READY for any
// other is refused, counted as "backend/service_not_allowed" and answered
// with DISCONNECT. AnyKey admits every key (with its Services, if any).
// A key listed twice may serve the union of its entries. Repeated calls
// append.
func WithWorkerKeys(keys ...AuthorizedKey) Option {
	return optionFunc(func(o *options) error {
		for _, k := range keys {
			if k.Key != AnyKey {
				if err := gate.CheckKey(k.Key); err != nil {
					return fmt.Errorf("broker: worker key: %w", err)
				}
			}
			for _, s := range k.Services {
				if s == "" || strings.ContainsAny(s, ": \t,") {
					return invalid("worker key %s: bad service name %q", k.Key, s)
				}
			}
			o.sec.workers = append(o.sec.workers, AuthorizedKey{Key: k.Key, Services: slices.Clone(k.Services)})
		}
		o.sec.workersSet = true
		return nil
	})
}

// validate checks the combination; New calls it.
func (s *secOptions) validate() error {
	if s.secret == "" {
		if s.clientsSet || s.workersSet {
			return invalid("client or worker keys given without WithCurve")
		}
		return nil
	}
	if s.front && !s.clientsSet {
		return invalid("CURVE on the frontend needs WithClientKeys (broker.AnyKey admits any client key)")
	}
	if s.back && !s.workersSet {
		return invalid("CURVE on the backend needs WithWorkerKeys (broker.AnyKey admits any worker key)")
	}
	return nil
}

// ParseKeyList reads an allow-list: one entry per line, "KEY" or
// "KEY service1,service2" (the services a worker key may serve), where
// KEY is a Z85 public key or AnyKey. Blank lines and comments (see
// a first word starting with '#' that is not a key) are
// skipped. Errors give the line number.
func ParseKeyList(r io.Reader) ([]AuthorizedKey, error) {
	var out []AuthorizedKey
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if keys.IsComment(line) {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 2 {
			return nil, fmt.Errorf("line %d: %w: want \"KEY\" or \"KEY service1,service2\", got %d fields", n, gate.ErrInvalidOption, len(f))
		}
		k := AuthorizedKey{Key: f[0]}
		if k.Key != AnyKey {
			if err := gate.CheckKey(k.Key); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		}
		if len(f) == 2 {
			for _, s := range strings.Split(f[1], ",") {
				if s == "" || strings.Contains(s, ":") {
					return nil, fmt.Errorf("line %d: %w: bad service name %q in %q", n, gate.ErrInvalidOption, s, f[1])
				}
				k.Services = append(k.Services, s)
			}
		}
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadKeyListFile reads an allow-list file (see ParseKeyList). An empty
// list is an error: it would lock every peer out.
func ReadKeyListFile(path string) ([]AuthorizedKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("broker: key list: %w", err)
	}
	defer f.Close()
	keys, err := ParseKeyList(f)
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("%w: no keys (use %q to admit any key)", gate.ErrInvalidOption, AnyKey)
	}
	if err != nil {
		return nil, fmt.Errorf("broker: key list %s: %w", path, err)
	}
	return keys, nil
}

// allowList is a compiled allow-list.
type allowList struct {
	any     bool
	anySvcs []string            // services of AnyKey; nil: any
	keys    map[string][]string // key -> services; nil slice: any
}

func compile(entries []AuthorizedKey) allowList {
	a := allowList{keys: make(map[string][]string)}
	merge := func(old []string, had bool, add []string) []string {
		if (had && old == nil) || len(add) == 0 {
			return nil // some entry allows any service
		}
		return append(old, add...)
	}
	for _, e := range entries {
		if e.Key == AnyKey {
			a.anySvcs = merge(a.anySvcs, a.any, e.Services)
			a.any = true
			continue
		}
		old, had := a.keys[e.Key]
		a.keys[e.Key] = merge(old, had, e.Services)
	}
	return a
}

func (a *allowList) admits(key string) bool {
	_, ok := a.keys[key]
	return ok || a.any
}

// mayServe reports whether key may register for service.
func (a *allowList) mayServe(key, service string) bool {
	if svcs, ok := a.keys[key]; ok && (svcs == nil || slices.Contains(svcs, service)) {
		return true
	}
	return a.any && (a.anySvcs == nil || slices.Contains(a.anySvcs, service))
}

// security is the broker's CURVE runtime: the ZAP handler goroutine (which
// owns the ZAP socket and the monitor sockets) and the checks the loop
// makes on the backend.
type security struct {
	opts             *secOptions
	log              *slog.Logger
	clients, workers allowList
	monFront         string // monitor endpoints of the CURVE sockets
	monBack          string

	mu       sync.Mutex
	failures map[string]uint64 // "socket/reason"
	mb       *zmqx.Mailbox     // the handler's; nil once stopped
	done     chan struct{}

	// Loop-owned.
	lastUID string            // ZAP User-Id of the backend message being handled
	keys    map[string]string // worker routing id -> key it registered with
}

const (
	zapDomainFront = "gate.frontend"
	zapDomainBack  = "gate.backend"
)

// startSecurity starts the ZAP handler before any socket binds; it is a
// no-op in plain mode.
func (l *loop) startSecurity() error {
	o := &l.opts.sec
	if o.secret == "" {
		return nil
	}
	s := &security{
		opts:     o,
		log:      l.log,
		clients:  compile(o.clients),
		workers:  compile(o.workers),
		monFront: zmqx.UniqueInproc("gate-monitor-frontend"),
		monBack:  zmqx.UniqueInproc("gate-monitor-backend"),
		failures: make(map[string]uint64),
		keys:     make(map[string]string),
		done:     make(chan struct{}),
	}
	ready := make(chan error, 1)
	go s.run(l.zctx, ready, l.b.signalClose)
	if err := <-ready; err != nil {
		<-s.done
		return err
	}
	l.sec = s
	return nil
}

// stopSecurity stops the ZAP handler after the sockets are closed.
func (l *loop) stopSecurity() {
	s := l.sec
	if s == nil {
		return
	}
	s.mu.Lock()
	mb := s.mb
	s.mu.Unlock()
	if mb != nil {
		_ = mb.Post(context.Background(), func() {
			s.mu.Lock()
			s.mb = nil
			s.mu.Unlock()
		})
	}
	<-s.done
}

// secureSocket sets up CURVE on a broker socket before it binds, or warns
// when a plain socket is bound beyond loopback.
func (l *loop) secureSocket(sock *zmq.Socket, name, ep string) error {
	s := l.sec
	on := s != nil && ((name == "frontend" && s.opts.front) || (name == "backend" && s.opts.back))
	if !on {
		if public(ep) {
			l.log.LogAttrs(context.Background(), slog.LevelWarn,
				"BROKER "+strings.ToUpper(name)+" IS PLAIN (NO ENCRYPTION, NO AUTHENTICATION) ON A NON-LOOPBACK ADDRESS: anyone who reaches it can call services or register workers; see docs/security.md",
				slog.String("socket", name), slog.String("endpoint", ep))
		}
		return nil
	}
	domain, mon := zapDomainFront, s.monFront
	if name == "backend" {
		domain, mon = zapDomainBack, s.monBack
	}
	if err := sock.SetCurveServer(1); err != nil {
		return err
	}
	if err := sock.SetCurveSecretkey(s.opts.secret); err != nil {
		return err
	}
	if err := sock.SetZapDomain(domain); err != nil {
		return err
	}
	if err := sock.Monitor(mon, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL|zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL); err != nil {
		return err
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "broker socket uses CURVE",
		slog.String("socket", name), slog.String("endpoint", ep), slog.String("server_public_key", s.opts.public))
	if strings.HasPrefix(ep, "inproc://") {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "CURVE does not apply to inproc endpoints: in-process peers are not authenticated",
			slog.String("socket", name), slog.String("endpoint", ep))
	}
	return nil
}

// public reports whether a tcp endpoint binds beyond loopback.
func public(ep string) bool {
	addr, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return false // ipc, inproc: local
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" || host == "lo" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// count records one denial.
func (s *security) count(socket, reason string, attrs ...slog.Attr) {
	s.mu.Lock()
	k := socket + "/" + reason
	s.failures[k]++
	n := s.failures[k]
	s.mu.Unlock()
	if n&(n-1) == 0 { // 1, 2, 4, 8...: a denied peer retries every 100 ms
		attrs = append(attrs, slog.String("socket", socket), slog.String("reason", reason), slog.Uint64("count", n))
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "broker: peer denied", attrs...)
	}
}

// authFailures returns a copy of the denial counts (nil in plain mode).
func (l *loop) authFailures() map[string]uint64 {
	out := map[string]uint64{}
	if l.sec == nil {
		return out
	}
	l.sec.mu.Lock()
	defer l.sec.mu.Unlock()
	for k, v := range l.sec.failures {
		out[k] = v
	}
	return out
}

// run is the ZAP handler goroutine: it answers libzmq's ZAP requests for
// the broker's CURVE sockets and counts failed handshakes reported by
// their monitors. If it fails after starting it stops the broker
// (fail closed: without a handler libzmq would admit everyone).
func (s *security) run(zctx *zmq.Context, ready chan<- error, stopBroker func()) {
	defer close(s.done)
	var socks []*zmq.Socket
	defer func() {
		for _, so := range socks {
			_ = so.Close()
		}
	}()
	zap, err := zctx.NewSocket(zmq.REP)
	if err == nil {
		socks = append(socks, zap)
		err = zap.SetLinger(0)
	}
	if err == nil {
		if err = zap.Bind(ZAPEndpoint); err != nil {
			err = fmt.Errorf("bind %s (is another broker or ZAP handler using this ZeroMQ context?): %w", ZAPEndpoint, err)
		}
	}
	mons := map[*zmq.Socket]string{}
	for _, m := range [][2]string{{"frontend", s.monFront}, {"backend", s.monBack}} {
		if err != nil {
			break
		}
		var p *zmq.Socket
		if p, err = zctx.NewSocket(zmq.PAIR); err == nil {
			socks = append(socks, p)
			if err = p.SetLinger(0); err == nil {
				err = p.Connect(m[1])
			}
			mons[p] = m[0]
		}
	}
	var mb *zmqx.Mailbox
	if err == nil {
		mb, err = zmqx.NewMailbox(zctx, 4)
	}
	if err != nil {
		ready <- fmt.Errorf("broker: ZAP handler: %w", err)
		return
	}
	defer mb.Close()
	s.mu.Lock()
	s.mb = mb
	s.mu.Unlock()
	ready <- nil

	poller := zmq.NewPoller()
	poller.Add(zap, zmq.POLLIN)
	for p := range mons {
		poller.Add(p, zmq.POLLIN)
	}
	poller.Add(mb.Socket(), zmq.POLLIN)
	running := true
	for running {
		polled, err := poller.Poll(-1)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			s.log.LogAttrs(context.Background(), slog.LevelError, "broker: ZAP handler failed: stopping the broker", slog.String("error", err.Error()))
			stopBroker()
			return
		}
		for _, p := range polled {
			switch p.Socket {
			case zap:
				if err := s.answer(zap); err != nil {
					s.log.LogAttrs(context.Background(), slog.LevelError, "broker: ZAP handler failed: stopping the broker", slog.String("error", err.Error()))
					stopBroker()
					return
				}
			case mb.Socket():
				mb.Drain()
				s.mu.Lock()
				running = s.mb != nil
				s.mu.Unlock()
			default:
				s.event(p.Socket, mons[p.Socket])
			}
		}
	}
}

// answer handles one ZAP request (RFC 27): version, request id, domain,
// address, identity, mechanism, credentials. Every request gets a reply
// (a REP socket must answer to read the next one).
func (s *security) answer(zap *zmq.Socket) error {
	msg, err := zap.RecvMessageBytes(zmq.DONTWAIT)
	if err != nil {
		if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
			return nil
		}
		return err
	}
	reqID := []byte{}
	if len(msg) > 1 {
		reqID = msg[1]
	}
	reply := func(code, text, uid string) error {
		_, err := zap.SendMessage("1.0", reqID, code, text, uid, "")
		return err
	}
	if len(msg) < 6 || string(msg[0]) != "1.0" {
		return reply("400", "malformed ZAP request", "")
	}
	domain, address, mech := string(msg[2]), string(msg[3]), string(msg[5])
	socket, list := "frontend", &s.clients
	switch domain {
	case zapDomainFront:
	case zapDomainBack:
		socket, list = "backend", &s.workers
	default:
		return reply("400", "unknown ZAP domain", "")
	}
	if mech != "CURVE" || len(msg) < 7 || len(msg[6]) != 32 {
		s.count(socket, AuthMechanism, slog.String("peer.address", address), slog.String("mechanism", mech))
		return reply("400", "CURVE required", "")
	}
	key := zmq.Z85encode(string(msg[6]))
	// The broker's own key is admitted on the frontend: only a holder of
	// the server's secret key has it, and `gate-broker health` probes
	// with it.
	if !list.admits(key) && (socket != "frontend" || key != s.opts.public) {
		s.count(socket, AuthUnknownKey, slog.String("peer.address", address), slog.String("key", key))
		return reply("400", "key not authorized", "")
	}
	return reply("200", "OK", key)
}

// event counts a failed handshake reported by a socket monitor.
func (s *security) event(p *zmq.Socket, socket string) {
	for {
		ev, addr, val, err := p.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return
		}
		reason := AuthHandshake
		if ev == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL {
			switch uint32(val) {
			case 0x11000002: // ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
				reason = AuthMechanism
			case 0x11000001: // ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
				reason = AuthCrypto
			}
		}
		s.count(socket, reason, slog.String("endpoint", addr)) // libzmq reports the listening endpoint, not the peer
	}
}

// recv reads one message; on the CURVE backend it also records the
// connection's ZAP User-Id (the worker's public key) for admit.
func (l *loop) recv(sock *zmq.Socket) ([][]byte, error) {
	if l.sec == nil || sock != l.back || !l.sec.opts.back {
		rx := &l.frontRx
		if sock == l.back {
			rx = &l.backRx
		}
		return rx.Recv(sock, l.recvLim) // valid until the next receive from sock
	}
	head, uid, more, err := zmqx.RecvHead(sock)
	if err != nil {
		return nil, err
	}
	l.sec.lastUID = uid
	if !more {
		return head, nil
	}
	// The rest of the message within what the limits leave.
	lim := l.recvLim
	if lim.MaxFrames > 0 {
		lim.MaxFrames = max(lim.MaxFrames-len(head), 1)
	}
	if lim.MaxBytes > 0 {
		for _, f := range head {
			lim.MaxBytes -= int64(len(f))
		}
		lim.MaxBytes = max(lim.MaxBytes, 1)
	}
	rest, err := zmqx.RecvMessageLimit(sock, lim)
	if err != nil {
		return nil, err
	}
	return append(head, rest...), nil
}

// admit checks a parsed backend message against the worker allow-list:
// a READY must name a service the key may serve, and a registered
// worker's messages must come from the key it registered with. It
// reports false for a message that was refused (counted, and the peer
// sent DISCONNECT). In plain mode it admits everything.
func (l *loop) admit(id []byte, w *worker, m wire.WorkerMessage) bool {
	s := l.sec
	if s == nil || !s.opts.back {
		return true
	}
	key := s.lastUID
	if w != nil {
		if k, ok := s.keys[w.key]; ok && k != key {
			s.count("backend", AuthKeyMismatch, slog.String("worker.id", hexID(id)), slog.String("key", key))
			l.removeWorker(w, GoneProtocol, true)
			return false
		}
		return true
	}
	if m.Command != wire.CmdReady {
		return true // the loop drops it as from an unknown worker
	}
	if key == "" { // inproc: not subject to CURVE
		return true
	}
	if !s.workers.mayServe(key, m.Service) {
		s.count("backend", AuthServiceNotAllowed, slog.String("worker.id", hexID(id)),
			slog.String("key", key), slog.String("gaterpc.service", m.Service))
		l.drop("backend", AuthServiceNotAllowed)
		l.disconnect(id)
		return false
	}
	if len(s.keys) > 2*len(l.workers)+64 {
		for k := range s.keys {
			if _, ok := l.workers[k]; !ok {
				delete(s.keys, k)
			}
		}
	}
	s.keys[string(id)] = key
	return true
}
