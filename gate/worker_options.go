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
