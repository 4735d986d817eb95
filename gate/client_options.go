package gate

import (
	"strings"
	"time"
)

// ClientOption configures a [Client]. [CommonOption] values (WithSettings,
// WithLogger, WithZMQContext, WithMiddleware, WithHeartbeat, ...) are
// ClientOptions too.
type ClientOption interface{ applyClient(*clientOptions) }

type clientOptions struct {
	common     commonOptions
	service    string        // default service; "" = Settings.DefaultService
	timeout    time.Duration // default call timeout; 0 = Settings.ReplyTimeout
	compressor string        // HugeData fallback; "" = Settings.HugeDataCompress
	retry      *RetryPolicy  // nil: no retries
}

type clientOptionFunc func(*clientOptions)

func (f clientOptionFunc) applyClient(o *clientOptions) { f(o) }

// WithDefaultService sets the service that a method name without a service
// part ("echo" rather than "Svc.echo") is sent to. The default is
// Settings.DefaultService ("GateRPC"). An empty name keeps the default.
func WithDefaultService(name string) ClientOption {
	return clientOptionFunc(func(o *clientOptions) {
		if strings.Contains(name, ":") {
			o.common.invalid("default service %q contains ':'", name)
			return
		}
		if name != "" {
			o.service = name
		}
	})
}

// WithTimeout sets the timeout of a call whose ctx has no deadline. The
// default is Settings.ReplyTimeout (60 s). d must be positive; 0 keeps the
// default.
func WithTimeout(d time.Duration) ClientOption {
	return clientOptionFunc(func(o *clientOptions) {
		if d < 0 {
			o.common.invalid("timeout %v must be positive", d)
			return
		}
		if d > 0 {
			o.timeout = d
		}
	})
}

// WithCompressor names the decompressor a client uses for a HugeData reply
// whose format it cannot sniff (gzip, bzip2, xz and zstd are recognised by
// their magic numbers whatever this says). The default is
// Settings.HugeDataCompress. The name must be registered with the chunk
// registry ("gzip", "zstd", "bzip2"/"bz2", "xz"/"lzma"); "" keeps the
// default.
func WithCompressor(name string) ClientOption {
	return clientOptionFunc(func(o *clientOptions) {
		if name != "" {
			o.compressor = name
		}
	})
}
