package broker

import (
	"fmt"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
)

// Defaults of the broker options. They follow gaterpc 0.2.12 where it has
// a setting (heartbeat 5 s, liveness 3, queue wait 30 s, HWM 3000).
const (
	DefaultFrontend     = "tcp://127.0.0.1:5555"
	DefaultBackend      = "tcp://127.0.0.1:5556"
	DefaultHeartbeat    = 5 * time.Second
	DefaultLiveness     = 3
	DefaultQueueLimit   = 10000
	DefaultQueueTimeout = 30 * time.Second
	// DefaultMaxMsgSize caps the total size of one inbound message (all
	// frames). libzmq additionally disconnects a tcp/ipc peer that sends
	// a single frame larger than this (ZMQ_MAXMSGSIZE).
	DefaultMaxMsgSize = 64 << 20
	DefaultHWM        = 3000
	// DefaultPeerBufferMessages and DefaultPeerBufferBytes bound the
	// messages the broker holds for one peer whose pipe is full (see
	// WithPeerBuffer).
	DefaultPeerBufferMessages = 4096
	DefaultPeerBufferBytes    = 16 << 20
)

// IDLen is the length of a broker id.
const IDLen = 16

// Option configures a Broker. New applies every option in order and
// reports all invalid ones together (errors.Join), each wrapping
// gate.ErrInvalidOption; a zero or empty argument keeps the default.
type Option interface{ apply(*options) error }

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

type options struct {
	frontend, backend string
	zctx              *zmq.Context
	heartbeat         time.Duration
	liveness          int
	queueLimit        int
	queueTimeout      time.Duration
	maxMsgSize        int64
	hwm               int
	logger            *slog.Logger
	observers         []Observer
	admission         func(*gate.Request) error
	id                []byte
	bufMsgs           int
	bufBytes          int64
	sec               secOptions // security.go
	limits            limits     // limits.go
}

func defaultOptions() options {
	return options{
		frontend:     DefaultFrontend,
		backend:      DefaultBackend,
		heartbeat:    DefaultHeartbeat,
		liveness:     DefaultLiveness,
		queueLimit:   DefaultQueueLimit,
		queueTimeout: DefaultQueueTimeout,
		maxMsgSize:   DefaultMaxMsgSize,
		hwm:          DefaultHWM,
		bufMsgs:      DefaultPeerBufferMessages,
		bufBytes:     DefaultPeerBufferBytes,
		limits:       defaultLimits(),
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("broker: %w: "+format, append([]any{gate.ErrInvalidOption}, args...)...)
}

// WithFrontend sets the endpoint the client-facing ROUTER binds
// (default DefaultFrontend). Any ZeroMQ endpoint works; "tcp://host:0"
// or "tcp://host:*" binds an ephemeral port, readable with Broker.Addrs.
// An empty string keeps the default.
func WithFrontend(endpoint string) Option {
	return optionFunc(func(o *options) error {
		if endpoint != "" {
			o.frontend = endpoint
		}
		return nil
	})
}

// WithBackend sets the endpoint the worker-facing ROUTER binds (default
// DefaultBackend). An empty string keeps the default.
func WithBackend(endpoint string) Option {
	return optionFunc(func(o *options) error {
		if endpoint != "" {
			o.backend = endpoint
		}
		return nil
	})
}

// WithZMQContext makes the broker create its sockets in zctx instead of a
// context of its own. inproc:// endpoints only connect sockets of the same
// context. The caller keeps ownership of zctx and terminates it after
// Serve has returned. nil keeps the default (a private context).
func WithZMQContext(zctx *zmq.Context) Option {
	return optionFunc(func(o *options) error {
		o.zctx = zctx
		return nil
	})
}

// WithHeartbeat sets the heartbeat interval towards workers (default
// DefaultHeartbeat). An idle worker gets a HEARTBEAT every interval; a
// worker silent for interval × liveness is expired. Python workers quit
// after about 3 × their own interval (5 s) without traffic, so keep it at
// 5 s or less when serving them. Zero keeps the default.
func WithHeartbeat(interval time.Duration) Option {
	return optionFunc(func(o *options) error {
		switch {
		case interval < 0:
			return invalid("heartbeat %v < 0", interval)
		case interval == 0:
		case interval < time.Millisecond:
			return invalid("heartbeat %v below 1ms", interval)
		default:
			o.heartbeat = interval
		}
		return nil
	})
}

// WithLiveness sets how many heartbeat intervals a worker may stay silent
// before it is expired (default DefaultLiveness). Zero keeps the default.
func WithLiveness(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return invalid("liveness %d < 0", n)
		}
		if n > 0 {
			o.liveness = n
		}
		return nil
	})
}

// WithQueueLimit bounds the requests waiting for a worker, per service
// (default DefaultQueueLimit). A request beyond it is answered at once
// with BusyWorkerError. Zero keeps the default.
func WithQueueLimit(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return invalid("queue limit %d < 0", n)
		}
		if n > 0 {
			o.queueLimit = n
		}
		return nil
	})
}

// WithQueueTimeout bounds how long a request waits for a worker with free
// capacity (default DefaultQueueTimeout, Python's TIMEOUT); it then gets
// BusyWorkerError. A shorter caller budget carried in a gate request id
// wins and yields TimeoutError. Zero keeps the default.
func WithQueueTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d < 0 {
			return invalid("queue timeout %v < 0", d)
		}
		if d > 0 {
			o.queueTimeout = d
		}
		return nil
	})
}

// WithMaxMsgSize caps the size in bytes of one inbound message, all frames
// together (default DefaultMaxMsgSize). Larger messages are dropped and
// counted as "<socket>/oversize"; libzmq disconnects tcp and ipc peers
// that send a single larger frame (ZMQ_MAXMSGSIZE). -1 means unlimited;
// zero keeps the default.
func WithMaxMsgSize(n int64) Option {
	return optionFunc(func(o *options) error {
		if n < -1 {
			return invalid("max message size %d < -1", n)
		}
		if n != 0 {
			o.maxMsgSize = n
		}
		return nil
	})
}

// WithHWM sets the send and receive high-water marks of both ROUTER
// sockets, in messages (default DefaultHWM, as in gaterpc 0.2.12). Zero
// keeps the default. Messages for a peer whose pipe is full are never
// dropped silently: they wait in a bounded overflow queue (see
// WithPeerBuffer).
func WithHWM(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return invalid("hwm %d < 0", n)
		}
		if n > 0 {
			o.hwm = n
		}
		return nil
	})
}

// WithPeerBuffer bounds the overflow queue of one peer: the messages the
// broker holds, in order, while the peer's pipe is full (it has HWM
// messages it has not read yet). The limit is reached at messages
// messages or bytes bytes, whichever comes first (defaults
// DefaultPeerBufferMessages and DefaultPeerBufferBytes). A client that
// reaches it has its requests failed with BusyWorkerError (carried in
// the stream's error marker, so a stream never loses items silently) and
// cancelled at gate workers; a REQUEST for a worker that reaches it is
// answered with BusyWorkerError. Final replies are queued past the limit.
// Stream items and HugeData chunks under flow control (docs/flow-control.md)
// are bounded by the reader's window: they do not count towards messages,
// only towards bytes.
// Zero keeps a default; bytes -1 means no byte limit.
func WithPeerBuffer(messages int, bytes int64) Option {
	return optionFunc(func(o *options) error {
		if messages < 0 {
			return invalid("peer buffer of %d messages < 0", messages)
		}
		if bytes < -1 {
			return invalid("peer buffer of %d bytes < -1", bytes)
		}
		if messages > 0 {
			o.bufMsgs = messages
		}
		if bytes != 0 {
			o.bufBytes = max(bytes, 0)
		}
		return nil
	})
}

// WithLogger sets the logger; nil means slog.Default(). The broker logs
// lifecycle at Info, recovered faults at Warn and per-request detail at
// Debug.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		o.logger = l
		return nil
	})
}

// WithID sets the broker's 16-byte id, reported by Gate.info as my_id.
// nil keeps the default: uuid5(DNS, "gm-" + 16 random hex digits), as
// gaterpc 0.2.12 derives it.
func WithID(id []byte) Option {
	return optionFunc(func(o *options) error {
		if id == nil {
			return nil
		}
		if len(id) != IDLen {
			return invalid("id of %d bytes, want %d", len(id), IDLen)
		}
		o.id = append([]byte(nil), id...)
		return nil
	})
}
