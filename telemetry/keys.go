package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the instrumentation scope of the tracer the middleware uses.
const ScopeName = "github.com/gaterpc/gate/telemetry"

// SystemName is the value of rpc.system.name on every span.
const SystemName = "gaterpc"

// OtherMethod replaces a method (or service) that is not in the registered
// table, in span attributes and metric labels alike.
const OtherMethod = "_OTHER"

// Log keys. They match the span attribute and metric label names, so a log
// line, a span and a series can be joined on them.
const (
	KeyRPCMethod   = "rpc.method"               // "Service/method"
	KeyStatusCode  = "rpc.response.status_code" // gate.Code.String()
	KeyWorkerID    = "worker.id"                // worker identity (hex), logs only
	KeyRequestID   = "request.id"               // request id (hex), logs only
	KeyDuration    = "duration_s"               // seconds, float
	KeyRole        = "gaterpc.role"             // client|broker|worker
	KeyService     = "gaterpc.service"          // service name
	KeyErrorType   = "error.type"               // status code name when not OK
	KeyTraceID     = "trace_id"                 // added by QueueHandler from ctx
	KeySpanID      = "span_id"                  // added by QueueHandler from ctx
	KeyErrorDetail = "error"                    // error text
)

// Span attribute keys of our own, under gaterpc.*.
const (
	AttrRole            = attribute.Key("gaterpc.role")
	AttrReplyKind       = attribute.Key("gaterpc.reply.kind") // single|stream|huge|none
	AttrStreamItems     = attribute.Key("gaterpc.stream.items")
	AttrHugeChunks      = attribute.Key("gaterpc.huge.chunks")
	AttrHugeCompressed  = attribute.Key("gaterpc.huge.compressed_bytes")
	AttrRequestSize     = attribute.Key("gaterpc.request.size")
	AttrResponseSize    = attribute.Key("gaterpc.response.size")
	AttrErrorClass      = attribute.Key("gaterpc.error.class")
	AttrQueueWait       = attribute.Key("gaterpc.queue.wait_s")
	AttrQueueExpired    = attribute.Key("gaterpc.queue.expired")
	AttrDispatchAttempt = attribute.Key("gaterpc.dispatch.attempt")
	AttrWorkerID        = attribute.Key("gaterpc.worker.id") // dispatch spans: the worker's routing id (hex)
	AttrRemoteParent    = attribute.Key("gaterpc.parent.missing")
	AttrAttempt         = attribute.Key("gaterpc.attempt") // client spans of a retry: 2, 3... (gate.Request.Attempt)
)

// Semantic-convention keys (semconv v1.43.0, the RPC conventions with
// rpc.system.name and rpc.response.status_code).
var (
	attrSystem        = semconv.RPCSystemNameKey.String(SystemName)
	keyMethod         = semconv.RPCMethodKey
	keyMethodOriginal = semconv.RPCMethodOriginalKey
	keyStatusCode     = semconv.RPCResponseStatusCodeKey
	keyErrorType      = semconv.ErrorTypeKey
	semconvSchemaURL  = semconv.SchemaURL
	_                 = semconvSchemaURL
)
