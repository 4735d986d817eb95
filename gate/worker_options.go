package gate

// WorkerOption configures a [Worker]. [CommonOption] values (WithSettings,
// WithLogger, WithZMQContext, WithMiddleware, ...) are WorkerOptions too.
type WorkerOption interface{ applyWorker(*workerOptions) }

type workerOptions struct {
	common    commonOptions
	poolSize  int
	depthHook func(service, executor string, depth int)
}

type workerOptionFunc func(*workerOptions)

func (f workerOptionFunc) applyWorker(o *workerOptions) { f(o) }

// WithSecure sets Settings.Secure: with true the worker behaves like a
// gaterpc 0.2.12 worker with its default SECURE=True and sends no reply
// to a request that names an unknown method or cannot be decoded (the
// caller times out). gate's default is false: such requests get an
// AttributeError or TypeError exception, so callers fail fast. Use true
// for a Go worker that stands in for a Python one whose clients rely on
// the silence. Like the other setting options it applies on top of
// [WithSettings], whatever their order.
func WithSecure(on bool) WorkerOption {
	return workerOptionFunc(func(o *workerOptions) {
		o.common.edits = append(o.common.edits, func(s *Settings) { s.Secure = on })
	})
}
