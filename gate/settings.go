package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/wire"
)

// Defaults of [Settings], matching gaterpc 0.2.12 (docs/wire-protocol.md
// section 13) except where noted.
const (
	defaultHeartbeat             = 5 * time.Second
	defaultLiveness              = 3
	defaultTimeout               = 30 * time.Second
	defaultReplyTimeout          = 2 * defaultTimeout
	defaultMessageMax            = 5000
	defaultStreamReplyMaxSize    = 1024
	defaultHugeDataSizeOf        = 1000
	defaultHugeDataCompress      = "gzip"
	defaultHugeDataCompressLevel = 1
	defaultHugeDataMaxSize       = 256 << 20
	defaultFlowWindowBytes       = 8 << 20
	defaultHugeDataChunkSize     = 256 << 10
	defaultAutoHugeThreshold     = 1 << 20
	defaultMaxStrLen             = 32 << 20
	defaultMaxBinLen             = 32 << 20
	defaultMaxEntries            = 1 << 20
	defaultServiceName           = "GateRPC"
	defaultInternalService       = "Gate"
	defaultHWM                   = 3000
	defaultWorkerAddr            = "ipc:///tmp/gate-rpc/w1"
	defaultReconnectBackoff      = 250 * time.Millisecond
	defaultReconnectBackoffMax   = 10 * time.Second
)

// Settings holds every tunable of the protocol and of the components that
// speak it. A zero field takes its default (see [DefaultSettings]), so
// Settings{} given to [WithSettings] means all defaults and a literal
// names only what it changes: Settings{Heartbeat: time.Second}. Where a
// feature can be turned off, a negative value turns it off
// (FlowWindowBytes, AutoHugeThreshold; a negative HWM leaves libzmq's own
// default).
//
// Components copy their Settings when they are constructed (gaterpc's
// "change Settings before instantiating"); later changes to a Settings
// value never reach a running Client or Worker. Pass them with
// [WithSettings]; individual options such as [WithHeartbeat] apply on top,
// whatever their position in the option list.
//
// Settings is a plain value: copy it freely.
type Settings struct {
	// Heartbeat is the heartbeat interval (0.2.12 HEARTBEAT and
	// MDP_HEARTBEAT_INTERVAL). A worker answers every broker heartbeat and
	// sends its own when it has sent nothing for this long; it is also the
	// worker's liveness unit. Env GATE_HEARTBEAT.
	Heartbeat time.Duration
	// Liveness is how many heartbeat intervals of silence make a peer dead
	// (MDP_HEARTBEAT_LIVENESS). A worker whose broker stays silent for
	// Heartbeat×Liveness reconnects. Env GATE_LIVENESS.
	Liveness int
	// Timeout is the broker's wait for a worker with free capacity
	// (TIMEOUT). Env GATE_TIMEOUT.
	Timeout time.Duration
	// ReplyTimeout is the client's default call timeout and the per-item
	// timeout of a stream (REPLY_TIMEOUT = 2×TIMEOUT). Env GATE_REPLY_TIMEOUT.
	ReplyTimeout time.Duration
	// MessageMax is a worker's announced capacity (max_allowed_request)
	// and in-flight limit, and the client's limit of pending calls
	// (MESSAGE_MAX). Env GATE_MESSAGE_MAX.
	MessageMax int
	// StreamReplyMaxSize is the client's buffer of stream items not yet
	// consumed (STREAM_REPLY_MAXSIZE) and, between gate peers, the item
	// half of the flow-control window the client grants a producer
	// (docs/flow-control.md). Env GATE_STREAM_REPLY_MAXSIZE.
	StreamReplyMaxSize int
	// FlowWindowBytes is the byte half of the flow-control window a gate
	// client grants a stream or HugeData producer: at most this many
	// payload bytes (plus one message) are in flight beyond what the
	// reader has consumed, at every hop. A negative value turns flow
	// control off (the client announces no window and buffers up to
	// StreamReplyMaxSize items, as 0.2.12 does). Env GATE_FLOW_WINDOW_BYTES
	// ("off", 0 or a negative value: off).
	FlowWindowBytes int64
	// HugeDataChunkSize is the HugeData chunk size between gate peers: a
	// gate client asks for it in the request metadata, and a gate worker
	// uses the size a client asks for (within 1000 B .. 4 MiB) instead of
	// HugeDataSizeOf. Peers that ask for nothing (0.2.12 clients) get
	// HugeDataSizeOf chunks. Env GATE_HUGE_DATA_CHUNK_SIZE.
	HugeDataChunkSize int
	// HugeDataSizeOf is the HugeData chunk size on the wire
	// (HUGE_DATA_SIZEOF, HugeData's blksize); at least 10.
	// Env GATE_HUGE_DATA_SIZEOF.
	HugeDataSizeOf int
	// HugeDataCompress names the HugeData compressor: "gzip" (0.2.12
	// compatible), "zstd" (gate to gate only), "bzip2", "xz" or one
	// registered with the chunk registry. The name is not sent on the wire:
	// both ends must agree, and Python 0.2.12 peers only read gzip.
	// Env GATE_HUGE_DATA_COMPRESS.
	HugeDataCompress string
	// HugeDataCompressLevel is the sender's compression level
	// (HUGE_DATA_COMPRESS_LEVEL); 0 takes the default (1), negative levels
	// go to the compressor as they are. Env GATE_HUGE_DATA_COMPRESS_LEVEL.
	HugeDataCompressLevel int
	// HugeDataMaxSize caps a received HugeData value after
	// decompression. Env GATE_HUGE_DATA_MAX_SIZE.
	HugeDataMaxSize int64
	// AutoHugeThreshold is a gate extension: a worker reply whose encoded
	// result exceeds this many bytes is sent as HugeData automatically.
	// A negative value turns it off (only explicit [Huge] values are
	// chunked); env GATE_AUTO_HUGE_THRESHOLD "off", 0 or negative. The default
	// is 1 MiB, far above 0.2.12's 1000, because a 0.2.12 Python client can
	// receive HugeData only once per process (quirk 19).
	AutoHugeThreshold int
	// MaxStrLen and MaxBinLen cap one msgpack str or bin when decoding;
	// MaxEntries caps one array or map (0.2.12 msgpack limits).
	// Env GATE_MAX_STR_LEN, GATE_MAX_BIN_LEN, GATE_MAX_ENTRIES.
	MaxStrLen  int
	MaxBinLen  int
	MaxEntries int
	// DefaultService is the service called when a method name has no
	// service part (SERVICE_DEFAULT_NAME) and the default service name of
	// a worker. Env GATE_DEFAULT_SERVICE.
	DefaultService string
	// InternalService is the broker's own service name
	// (MDP_INTERNAL_SERVICE); workers cannot register it.
	// Env GATE_INTERNAL_SERVICE.
	InternalService string
	// HWM is the send and receive high-water mark of every socket, in
	// messages (ZMQ_SOCK). A negative value leaves libzmq's default (1000).
	// Env GATE_HWM (0 or negative: libzmq's default).
	HWM int
	// WorkerAddr is the broker backend endpoint workers connect to by
	// default (WORKER_ADDR). Env GATE_WORKER_ADDR.
	WorkerAddr string
	// Secure makes a worker stay silent, like 0.2.12's default SECURE=True,
	// when a request names an unknown method or cannot be decoded. gate
	// defaults to false: such requests get an AttributeError or TypeError
	// exception reply, so callers fail fast instead of timing out
	// (quirk 1). Env GATE_SECURE; option [WithSecure].
	Secure bool
	// ReconnectBackoff and ReconnectBackoffMax bound the exponential
	// backoff (with jitter) between reconnect attempts after the broker
	// disconnects the peer; after a silent broker the peer reconnects at
	// once and the backoff lengthens the new connection's silence window.
	// Env GATE_RECONNECT_BACKOFF, GATE_RECONNECT_BACKOFF_MAX.
	ReconnectBackoff    time.Duration
	ReconnectBackoffMax time.Duration
	// Curve turns on CURVE encryption and authentication towards the
	// broker (see [Curve], [WithCurve] and [CurveFromEnv]); the zero
	// value is plain TCP. Env: see CurveFromEnv.
	Curve Curve
}

// DefaultSettings returns the defaults, those of gaterpc 0.2.12 except
// where a field's doc says otherwise:
//
//	Heartbeat 5s, Liveness 3, Timeout 30s, ReplyTimeout 60s,
//	MessageMax 5000, StreamReplyMaxSize 1024, FlowWindowBytes 8 MiB,
//	HugeDataChunkSize 256 KiB, HugeDataSizeOf 1000, HugeDataCompress "gzip",
//	HugeDataCompressLevel 1, HugeDataMaxSize 256 MiB, AutoHugeThreshold 1 MiB,
//	MaxStrLen 32 MiB, MaxBinLen 32 MiB, MaxEntries 1048576,
//	DefaultService "GateRPC", InternalService "Gate", HWM 3000,
//	WorkerAddr "ipc:///tmp/gate-rpc/w1", Secure false,
//	ReconnectBackoff 250ms, ReconnectBackoffMax 10s, Curve off.
func DefaultSettings() Settings {
	return Settings{
		Heartbeat:             defaultHeartbeat,
		Liveness:              defaultLiveness,
		Timeout:               defaultTimeout,
		ReplyTimeout:          defaultReplyTimeout,
		MessageMax:            defaultMessageMax,
		StreamReplyMaxSize:    defaultStreamReplyMaxSize,
		HugeDataSizeOf:        defaultHugeDataSizeOf,
		HugeDataCompress:      defaultHugeDataCompress,
		HugeDataCompressLevel: defaultHugeDataCompressLevel,
		HugeDataMaxSize:       defaultHugeDataMaxSize,
		FlowWindowBytes:       defaultFlowWindowBytes,
		HugeDataChunkSize:     defaultHugeDataChunkSize,
		AutoHugeThreshold:     defaultAutoHugeThreshold,
		MaxStrLen:             defaultMaxStrLen,
		MaxBinLen:             defaultMaxBinLen,
		MaxEntries:            defaultMaxEntries,
		DefaultService:        defaultServiceName,
		InternalService:       defaultInternalService,
		HWM:                   defaultHWM,
		WorkerAddr:            defaultWorkerAddr,
		ReconnectBackoff:      defaultReconnectBackoff,
		ReconnectBackoffMax:   defaultReconnectBackoffMax,
	}
}

// envVar binds one GATE_* variable to a Settings field.
type envVar struct {
	name string
	set  func(s *Settings, v string) error
}

func durationVar(name string, f func(*Settings) *time.Duration) envVar {
	return envVar{name, func(s *Settings, v string) error {
		d, err := parseDuration(v)
		if err == nil {
			*f(s) = d
		}
		return err
	}}
}

func intVar(name string, f func(*Settings) *int) envVar {
	return envVar{name, func(s *Settings, v string) error {
		n, err := parseSize(v)
		if err == nil {
			*f(s) = int(n)
		}
		return err
	}}
}

func stringVar(name string, f func(*Settings) *string) envVar {
	return envVar{name, func(s *Settings, v string) error { *f(s) = v; return nil }}
}

// envVars lists every variable SettingsFromEnv reads, in the order of the
// Settings fields.
var envVars = []envVar{
	durationVar("GATE_HEARTBEAT", func(s *Settings) *time.Duration { return &s.Heartbeat }),
	intVar("GATE_LIVENESS", func(s *Settings) *int { return &s.Liveness }),
	durationVar("GATE_TIMEOUT", func(s *Settings) *time.Duration { return &s.Timeout }),
	durationVar("GATE_REPLY_TIMEOUT", func(s *Settings) *time.Duration { return &s.ReplyTimeout }),
	intVar("GATE_MESSAGE_MAX", func(s *Settings) *int { return &s.MessageMax }),
	intVar("GATE_STREAM_REPLY_MAXSIZE", func(s *Settings) *int { return &s.StreamReplyMaxSize }),
	{"GATE_FLOW_WINDOW_BYTES", func(s *Settings, v string) error {
		n, err := parseSizeOff(v)
		if err == nil {
			s.FlowWindowBytes = n
		}
		return err
	}},
	intVar("GATE_HUGE_DATA_CHUNK_SIZE", func(s *Settings) *int { return &s.HugeDataChunkSize }),
	intVar("GATE_HUGE_DATA_SIZEOF", func(s *Settings) *int { return &s.HugeDataSizeOf }),
	stringVar("GATE_HUGE_DATA_COMPRESS", func(s *Settings) *string { return &s.HugeDataCompress }),
	{"GATE_HUGE_DATA_COMPRESS_LEVEL", func(s *Settings, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err == nil {
			s.HugeDataCompressLevel = n
		}
		return err
	}},
	{"GATE_HUGE_DATA_MAX_SIZE", func(s *Settings, v string) error {
		n, err := parseSize(v)
		if err == nil {
			s.HugeDataMaxSize = n
		}
		return err
	}},
	{"GATE_AUTO_HUGE_THRESHOLD", func(s *Settings, v string) error {
		n, err := parseSizeOff(v)
		if err == nil {
			s.AutoHugeThreshold = int(n)
		}
		return err
	}},
	intVar("GATE_MAX_STR_LEN", func(s *Settings) *int { return &s.MaxStrLen }),
	intVar("GATE_MAX_BIN_LEN", func(s *Settings) *int { return &s.MaxBinLen }),
	intVar("GATE_MAX_ENTRIES", func(s *Settings) *int { return &s.MaxEntries }),
	stringVar("GATE_DEFAULT_SERVICE", func(s *Settings) *string { return &s.DefaultService }),
	stringVar("GATE_INTERNAL_SERVICE", func(s *Settings) *string { return &s.InternalService }),
	{"GATE_HWM", func(s *Settings, v string) error {
		n, err := parseSizeOff(v)
		if err == nil {
			s.HWM = int(n)
		}
		return err
	}},
	stringVar("GATE_WORKER_ADDR", func(s *Settings) *string { return &s.WorkerAddr }),
	{"GATE_SECURE", func(s *Settings, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err == nil {
			s.Secure = b
		}
		return err
	}},
	durationVar("GATE_RECONNECT_BACKOFF", func(s *Settings) *time.Duration { return &s.ReconnectBackoff }),
	durationVar("GATE_RECONNECT_BACKOFF_MAX", func(s *Settings) *time.Duration { return &s.ReconnectBackoffMax }),
}

// SettingsFromEnv returns [DefaultSettings] overridden by the GATE_*
// variables that getenv reports as non-empty (pass os.Getenv). Each
// Settings field documents its variable. Formats:
//
//   - durations: Go syntax ("5s", "1500ms", "1m30s"); a bare number means
//     seconds ("30", "0.5");
//   - sizes and counts: a decimal integer, optionally with a binary suffix
//     K, KiB, M, MiB, G or GiB ("256MiB");
//   - GATE_FLOW_WINDOW_BYTES, GATE_AUTO_HUGE_THRESHOLD, GATE_HWM: a size,
//     or "off", 0 or a negative number for off (libzmq's default HWM);
//   - booleans: strconv.ParseBool syntax (1, true, false, ...);
//   - strings: taken verbatim.
//
// The result is validated. Errors wrap [ErrInvalidOption] and name the
// variable.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := DefaultSettings()
	if getenv == nil {
		return s, nil
	}
	var errs []error
	for _, ev := range envVars {
		v := getenv(ev.name)
		if v == "" {
			continue
		}
		if err := ev.set(&s, v); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s=%q: %v", ErrInvalidOption, ev.name, v, unwrapNum(err)))
		}
	}
	if c, err := CurveFromEnv(getenv); err != nil { // GATE_CURVE_*: security.go
		errs = append(errs, err)
	} else {
		s.Curve = c
	}
	if len(errs) > 0 {
		return s, errors.Join(errs...)
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || f > float64(1<<62)/float64(time.Second) {
			return 0, errors.New("out of range")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration (want e.g. 5s, 250ms or a number of seconds)")
	}
	return d, nil
}

// parseSizeOff is parseSize where "off", 0 and negative numbers all mean
// off, stored as -1.
func parseSizeOff(v string) (int64, error) {
	if strings.EqualFold(strings.TrimSpace(v), "off") {
		return -1, nil
	}
	n, err := parseSize(v)
	if err != nil {
		return 0, errors.New("not an integer (want e.g. 8MiB, or off)")
	}
	if n <= 0 {
		return -1, nil
	}
	return n, nil
}

func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(v, s.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, s.suffix)), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New("not an integer (want e.g. 5000 or 256MiB)")
	}
	if n != 0 && (n > (1<<62)/mult || n < -(1<<62)/mult) {
		return 0, errors.New("out of range")
	}
	return n * mult, nil
}

// withDefaults returns s with every zero field set to its default (see
// [DefaultSettings]); Curve and Secure are off when zero.
func (s Settings) withDefaults() Settings {
	d := DefaultSettings()
	zero := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	zeroInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	zeroStr := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	zero(&s.Heartbeat, d.Heartbeat)
	zeroInt(&s.Liveness, d.Liveness)
	zero(&s.Timeout, d.Timeout)
	zero(&s.ReplyTimeout, d.ReplyTimeout)
	zeroInt(&s.MessageMax, d.MessageMax)
	zeroInt(&s.StreamReplyMaxSize, d.StreamReplyMaxSize)
	if s.FlowWindowBytes == 0 {
		s.FlowWindowBytes = d.FlowWindowBytes
	}
	zeroInt(&s.HugeDataChunkSize, d.HugeDataChunkSize)
	zeroInt(&s.HugeDataSizeOf, d.HugeDataSizeOf)
	zeroStr(&s.HugeDataCompress, d.HugeDataCompress)
	zeroInt(&s.HugeDataCompressLevel, d.HugeDataCompressLevel)
	if s.HugeDataMaxSize == 0 {
		s.HugeDataMaxSize = d.HugeDataMaxSize
	}
	zeroInt(&s.AutoHugeThreshold, d.AutoHugeThreshold)
	zeroInt(&s.MaxStrLen, d.MaxStrLen)
	zeroInt(&s.MaxBinLen, d.MaxBinLen)
	zeroInt(&s.MaxEntries, d.MaxEntries)
	zeroStr(&s.DefaultService, d.DefaultService)
	zeroStr(&s.InternalService, d.InternalService)
	zeroInt(&s.HWM, d.HWM)
	zeroStr(&s.WorkerAddr, d.WorkerAddr)
	zero(&s.ReconnectBackoff, d.ReconnectBackoff)
	zero(&s.ReconnectBackoffMax, d.ReconnectBackoffMax)
	return s
}

// Validate reports the problems with s, joined, each wrapping
// [ErrInvalidOption]. A zero field is a problem here; components
// validate s with zero fields filled in.
func (s Settings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
	}
	if s.Heartbeat < time.Millisecond {
		bad("Heartbeat %v: must be at least 1ms", s.Heartbeat)
	}
	if s.Liveness < 1 {
		bad("Liveness %d: must be at least 1", s.Liveness)
	}
	if s.Timeout <= 0 {
		bad("Timeout %v: must be positive", s.Timeout)
	}
	if s.ReplyTimeout <= 0 {
		bad("ReplyTimeout %v: must be positive", s.ReplyTimeout)
	}
	if s.MessageMax < 1 {
		bad("MessageMax %d: must be at least 1", s.MessageMax)
	}
	if s.StreamReplyMaxSize < 1 {
		bad("StreamReplyMaxSize %d: must be at least 1", s.StreamReplyMaxSize)
	}
	if s.FlowWindowBytes > 0 && (s.FlowWindowBytes < wire.MinWindowBytes || s.FlowWindowBytes > wire.MaxWindowBytes) {
		bad("FlowWindowBytes %d: must be negative (off) or within %d..%d", s.FlowWindowBytes, wire.MinWindowBytes, wire.MaxWindowBytes)
	}
	if s.StreamReplyMaxSize > wire.MaxWindowItems {
		bad("StreamReplyMaxSize %d: must be at most %d", s.StreamReplyMaxSize, wire.MaxWindowItems)
	}
	if s.HugeDataChunkSize < wire.MinChunk || s.HugeDataChunkSize > wire.MaxChunk {
		bad("HugeDataChunkSize %d: must be within %d..%d", s.HugeDataChunkSize, wire.MinChunk, wire.MaxChunk)
	}
	if s.HugeDataSizeOf < 10 {
		bad("HugeDataSizeOf %d: must be at least 10 (the gzip header must fit in the first chunk)", s.HugeDataSizeOf)
	}
	if s.HugeDataCompress == "" {
		bad("HugeDataCompress is empty: want gzip, zstd, bzip2, xz or a registered compressor")
	}
	if s.HugeDataMaxSize <= 0 {
		bad("HugeDataMaxSize %d: must be positive", s.HugeDataMaxSize)
	}
	if s.MaxStrLen < 1 || s.MaxBinLen < 1 || s.MaxEntries < 1 {
		bad("MaxStrLen %d, MaxBinLen %d, MaxEntries %d: must all be positive", s.MaxStrLen, s.MaxBinLen, s.MaxEntries)
	}
	if err := checkServiceName("DefaultService", s.DefaultService); err != "" {
		bad("%s", err)
	}
	if err := checkServiceName("InternalService", s.InternalService); err != "" {
		bad("%s", err)
	}
	if s.DefaultService != "" && s.DefaultService == s.InternalService {
		bad("DefaultService %q: reserved for the broker's internal service", s.DefaultService)
	}
	if !strings.Contains(s.WorkerAddr, "://") {
		bad("WorkerAddr %q: want an endpoint such as tcp://127.0.0.1:5556 or ipc:///tmp/gate-rpc/w1", s.WorkerAddr)
	}
	if s.ReconnectBackoff <= 0 || s.ReconnectBackoffMax < s.ReconnectBackoff {
		bad("ReconnectBackoff %v, ReconnectBackoffMax %v: want 0 < backoff <= max", s.ReconnectBackoff, s.ReconnectBackoffMax)
	}
	if _, err := s.Curve.resolve(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkServiceName returns "" if name can be announced in a READY message.
func checkServiceName(field, name string) string {
	switch {
	case name == "":
		return field + " is empty"
	case strings.Contains(name, ":"):
		return fmt.Sprintf("%s %q: must not contain ':' (the READY separator)", field, name)
	}
	return ""
}

// CommonOption configures any gate component that takes options: it is
// both a [WorkerOption] and a client option. A nil-valued argument keeps
// the default.
//
// Settings edits ([WithHeartbeat] and friends) apply on top of
// [WithSettings] whatever their order; between themselves, later wins.
type CommonOption interface {
	ClientOption
	WorkerOption
	applyCommon(*commonOptions)
}

// commonOption is the one implementation of CommonOption.
type commonOption func(*commonOptions)

func (o commonOption) applyCommon(c *commonOptions) { o(c) }
func (o commonOption) applyWorker(w *workerOptions) { o(&w.common) }
func (o commonOption) applyClient(c *clientOptions) { o(&c.common) }

// commonOptions is embedded in the per-component options structs.
type commonOptions struct {
	base   *Settings
	edits  []func(*Settings)
	logger *slog.Logger
	zctx   *zmq.Context
	mws    []Middleware
	errs   []error // invalid option arguments, reported by settings()
}

// invalid records an invalid option argument.
func (c *commonOptions) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

// settings resolves the base settings plus edits, fills zero fields with
// their defaults and validates the result.
func (c *commonOptions) settings() (Settings, error) {
	s := DefaultSettings()
	if c.base != nil {
		s = *c.base
	}
	for _, e := range c.edits {
		e(&s)
	}
	s = s.withDefaults()
	errs := append(c.errs[:len(c.errs):len(c.errs)], s.Validate())
	return s, errors.Join(errs...)
}

func (c *commonOptions) log() *slog.Logger {
	if c.logger == nil {
		return slog.Default()
	}
	return c.logger
}

func edit(f func(*Settings)) CommonOption {
	return commonOption(func(c *commonOptions) { c.edits = append(c.edits, f) })
}

// WithSettings replaces the defaults with s (copied); its zero fields take
// their defaults, so WithSettings(Settings{}) changes nothing. Individual
// setting options apply on top of it.
func WithSettings(s Settings) CommonOption {
	return commonOption(func(c *commonOptions) { c.base = &s })
}

// WithHeartbeat sets Settings.Heartbeat.
func WithHeartbeat(d time.Duration) CommonOption {
	return edit(func(s *Settings) { s.Heartbeat = d })
}

// WithLiveness sets Settings.Liveness.
func WithLiveness(n int) CommonOption { return edit(func(s *Settings) { s.Liveness = n }) }

// WithMessageMax sets Settings.MessageMax: a worker's capacity, a client's
// pending-call limit.
func WithMessageMax(n int) CommonOption { return edit(func(s *Settings) { s.MessageMax = n }) }

// WithHugeData sets the HugeData compressor name, level and chunk size
// (Settings.HugeDataCompress, HugeDataCompressLevel, HugeDataSizeOf).
func WithHugeData(compress string, level, chunkSize int) CommonOption {
	return edit(func(s *Settings) {
		s.HugeDataCompress, s.HugeDataCompressLevel, s.HugeDataSizeOf = compress, level, chunkSize
	})
}

// WithLogger sets the logger; nil means slog.Default().
func WithLogger(l *slog.Logger) CommonOption {
	return commonOption(func(c *commonOptions) { c.logger = l })
}

// WithZMQContext makes the component create its sockets in zctx instead of
// a context of its own. inproc:// endpoints connect only sockets of the
// same context. The caller owns zctx and terminates it after closing every
// component that uses it. nil keeps the default.
func WithZMQContext(zctx *zmq.Context) CommonOption {
	return commonOption(func(c *commonOptions) { c.zctx = zctx })
}

// WithMiddleware appends middleware to the component's chain; the first
// one given is the outermost (see [Chain]).
func WithMiddleware(mws ...Middleware) CommonOption {
	return commonOption(func(c *commonOptions) { c.mws = append(c.mws, mws...) })
}
