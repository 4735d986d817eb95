package gate

import (
	"context"
	"time"

	"github.com/gaterpc/gate/internal/gatehook"
	"github.com/gaterpc/gate/internal/wire"
)

// Role tells at which hop a Handler runs.
type Role uint8

// Hops of a call.
const (
	RoleClient Role = iota + 1
	RoleBroker
	RoleWorker
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleBroker:
		return "broker"
	case RoleWorker:
		return "worker"
	}
	return "unknown"
}

// Info describes the call a Handler serves, like grpc.UnaryServerInfo.
type Info struct {
	Role    Role
	Service string
	Method  string
}

// FullMethod is "Service/method", the span name and rpc.method value.
func (i Info) FullMethod() string { return i.Service + "/" + i.Method }

// Request is one call as seen by a Handler at any hop. Middleware may read
// every field and may add Metadata entries before the innermost handler
// runs (a client's tracing middleware injects trace context there).
// A Request must not be retained after the handler returns.
type Request struct {
	Service string
	Method  string
	// ID is the base request id (without gate metadata).
	ID []byte
	// Metadata is the propagation carrier (traceparent, tracestate,
	// baggage). It travels inside the request id frame (see docs/protocol.md)
	// and is empty when the caller is a 0.2.12 Python peer.
	Metadata map[string]string
	// Deadline is when the caller stops waiting; zero means unknown.
	Deadline time.Time
	// Peer is the routing id of the sender (broker: client id; worker: the
	// client id the broker forwarded); nil at the client.
	Peer []byte
	// Args and Kwargs are the call arguments at the client before
	// encoding. At the broker and the worker they are nil: the raw body
	// frames are in Body.
	Args   []any
	Kwargs map[string]any
	// Body holds the msgpack body frames (func, args, kwargs) where they
	// exist: always at the broker and the worker, after encoding at the
	// client.
	Body [][]byte

	role Role

	// Per-call state of the hop that built the request. It lives here,
	// not in the ctx, so that middleware calling the next handler with a
	// ctx of its own (not derived from the one it got) cannot lose it;
	// middleware that passes a copy of *r keeps it too.
	spec   *callSpec   // client: how to decode the replies
	parsed *parsedBody // worker: the decoded body
	env    *replyEnv   // worker: codec and settings for replies
}

// Info returns the hop and method of r.
func (r *Request) Info() Info { return Info{Role: r.role, Service: r.Service, Method: r.Method} }

// setRole is used by the hops that build requests (client, broker,
// worker); other packages of this module reach it through
// internal/gatehook.
func (r *Request) setRole(role Role) { r.role = role }

func init() {
	gatehook.Install(func(req any, role uint8) { req.(*Request).setRole(Role(role)) },
		func(class, repr, tb string) error {
			return &Error{Code: codeForClass(class), Class: class, Message: repr, Traceback: tb}
		})
}

// ReplyKind classifies one reply message: a single reply, or one message
// of a stream or of a HugeData value. Its methods are String (e.g.
// "stream_item"), Final (the message ends the call: a single reply or an
// end or error marker) and IsError (a stream or HugeData error marker).
type ReplyKind = wire.ReplyKind

// Reply kinds. A unary call has one ReplySingle; a stream has
// ReplyStreamItem messages ending with ReplyStreamEnd or
// ReplyStreamError; HugeData has ReplyHugeChunk messages ending with
// ReplyHugeEnd or ReplyHugeError.
const (
	ReplySingle      = wire.ReplySingle      // one {result, exception} map
	ReplyStreamItem  = wire.ReplyStreamItem  // one stream item
	ReplyStreamEnd   = wire.ReplyStreamEnd   // the stream ended
	ReplyStreamError = wire.ReplyStreamError // the stream failed: an exception triple
	ReplyHugeChunk   = wire.ReplyHugeChunk   // one chunk of a compressed HugeData value
	ReplyHugeEnd     = wire.ReplyHugeEnd     // the HugeData value is complete
	ReplyHugeError   = wire.ReplyHugeError   // the HugeData value failed: an exception triple
)

// Reply is one reply message. Unary, streamed and huge replies all pass
// through ReplyWriter.Send, one Reply per wire message.
type Reply struct {
	Kind ReplyKind
	// Value is the decoded (client) or to-be-encoded (worker) value of a
	// single reply or stream item; nil at the broker.
	Value any
	// Err is the remote exception of a single reply or an error marker.
	Err error
	// Body is the encoded body as on the wire; always set at the broker.
	Body [][]byte
}

// Size is the number of body bytes of r on the wire.
func (r *Reply) Size() int {
	n := 0
	for _, f := range r.Body {
		n += len(f)
	}
	return n
}

// ReplyWriter receives the replies of one call. Middleware that measures
// replies wraps it by embedding. Implementations are not required to be
// safe for concurrent use: a call's replies are sent in order by one
// goroutine.
type ReplyWriter interface {
	Send(ctx context.Context, r *Reply) error
}

// ReplyWriterFunc adapts a function to ReplyWriter.
type ReplyWriterFunc func(ctx context.Context, r *Reply) error

// Send calls f.
func (f ReplyWriterFunc) Send(ctx context.Context, r *Reply) error { return f(ctx, r) }

// Handler serves one call at one hop. The returned error is the call's
// final status: nil means OK; use CodeOf to classify it.
type Handler interface {
	ServeRPC(ctx context.Context, req *Request, w ReplyWriter) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request, w ReplyWriter) error

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, req *Request, w ReplyWriter) error {
	return f(ctx, req, w)
}

// Middleware wraps a Handler. The same Middleware works at the client,
// the broker and the worker; req.Info().Role tells where it runs.
type Middleware func(Handler) Handler

// Chain composes middleware into one. The first middleware is the
// outermost: Chain(a, b)(h) runs a, then b, then h.
func Chain(mws ...Middleware) Middleware {
	return func(h Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				h = mws[i](h)
			}
		}
		return h
	}
}
