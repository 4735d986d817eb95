package telemetry

import (
	"context"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/gaterpc/gate/gate"
)

// Logging returns middleware that logs one Debug record per call when
// it ends, with rpc.method, gaterpc.role, request.id, duration_s,
// rpc.response.status_code and, on failure, error.type and error. A call
// that fails with a server fault (UNKNOWN, INTERNAL, UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED: a lost worker or broker, a
// deadline, a crash) is logged at Warn, also when Debug is off; caller
// faults (a bad argument, an unknown method, a cancel) stay at Debug. With
// Debug off it costs one Enabled check and, for a call that returns an
// error, one CodeOf. A nil logger means
// slog.Default(). Options: WithMethods, WithMaxMethods. Place it after
// Tracing so that a QueueHandler adds the call's trace_id and span_id.
func Logging(logger *slog.Logger, opts ...Option) gate.Middleware {
	c := newConfig(opts)
	methods := newLabelSet(c.methods, c.maxMethods)
	return func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			l := logger
			if l == nil {
				l = slog.Default()
			}
			if !l.Enabled(ctx, slog.LevelDebug) {
				start := c.clock()
				err := next.ServeRPC(ctx, req, w)
				if err != nil && serverFault(gate.CodeOf(err)) && l.Enabled(ctx, slog.LevelWarn) {
					info := req.Info()
					method, _ := methods.method(info)
					logCall(ctx, l, method, info.Role, req.ID, c.clock()-start, &replyCounter{}, err)
				}
				return err
			}
			info := req.Info()
			method, _ := methods.method(info)
			start := c.clock()
			rc := &replyCounter{ReplyWriter: w, wireExc: info.Role == gate.RoleBroker}
			err := next.ServeRPC(ctx, req, rc)
			logCall(ctx, l, method, info.Role, req.ID, c.clock()-start, rc, err)
			return err
		})
	}
}

// logCall writes the Debug record of one finished call.
func logCall(ctx context.Context, l *slog.Logger, method string, role gate.Role, id []byte, dur time.Duration, rc *replyCounter, err error) {
	code := rc.code(err)
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String(KeyRPCMethod, method),
		slog.String(KeyRole, role.String()),
		slog.String(KeyRequestID, hex.EncodeToString(id)),
		slog.Float64(KeyDuration, dur.Seconds()),
		slog.String(KeyStatusCode, code.String()),
	)
	if code != gate.OK {
		attrs = append(attrs, slog.String(KeyErrorType, code.String()))
		if err != nil {
			attrs = append(attrs, slog.String(KeyErrorDetail, err.Error()))
		} else if rc.replyErr != nil {
			attrs = append(attrs, slog.String(KeyErrorDetail, rc.replyErr.Error()))
		}
	}
	level := slog.LevelDebug
	if serverFault(code) {
		level = slog.LevelWarn
	}
	l.LogAttrs(ctx, level, "rpc", attrs...)
}

// serverFault reports whether a call that ended with code failed on the
// serving side (worth a Warn), not through the caller's own doing.
func serverFault(code gate.Code) bool {
	switch code {
	case gate.Unknown, gate.Internal, gate.Unavailable, gate.DeadlineExceeded, gate.ResourceExhausted:
		return true
	}
	return false
}
