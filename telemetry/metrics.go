package telemetry

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/gatehook"
	"github.com/gaterpc/gate/internal/wire"
)

// Metric label names.
const (
	labelMethod   = "rpc_method"
	labelStatus   = "rpc_response_status_code"
	labelService  = "service"
	labelOutcome  = "outcome"
	labelState    = "state"
	labelPeer     = "peer"
	labelReason   = "reason"
	labelSocket   = "socket"
	labelExecutor = "executor"
	labelKind     = "kind"
)

// register registers cs with reg, or does nothing when reg is nil.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func histogramOpts(c *config, name, help string, buckets []float64) prometheus.HistogramOpts {
	o := prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}
	if c.nativeFac > 1 {
		o.NativeHistogramBucketFactor = c.nativeFac
		o.NativeHistogramMaxBucketNumber = 160
		o.NativeHistogramMinResetDuration = time.Hour
	}
	return o
}

// ExemplarInterval is the shortest time between two exemplars offered to
// one bucket of one histogram series. Prometheus keeps only the latest
// exemplar of a classic bucket and scrapes every few seconds, so an
// exemplar per call would cost a label copy and a lock per call (about a
// microsecond) and show nothing more.
const ExemplarInterval = time.Second

// histogram is a histogram child that offers a trace_id exemplar (when
// ctx holds a sampled span) at most once per ExemplarInterval per bucket,
// so that each bucket, slow ones included, keeps a recent exemplar.
type histogram struct {
	obs    prometheus.Observer
	eo     prometheus.ExemplarObserver // nil: exemplars off
	bounds []float64                   // upper bounds of the classic buckets
	next   []atomic.Int64              // per bucket (+Inf last): earliest next exemplar, config.clock ns; 0: none yet
}

func newHistogram(o prometheus.Observer, bounds []float64, exemplars bool) *histogram {
	h := &histogram{obs: o}
	if eo, ok := o.(prometheus.ExemplarObserver); ok && exemplars {
		h.eo, h.bounds, h.next = eo, bounds, make([]atomic.Int64, len(bounds)+1)
	}
	return h
}

// observe records v, at now (a config.clock reading), with an exemplar
// when one is due.
func (h *histogram) observe(ctx context.Context, v float64, now time.Duration) {
	if h.eo != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
			slot := &h.next[sort.SearchFloat64s(h.bounds, v)]
			due, t := slot.Load(), int64(now)
			if (due == 0 || t >= due) && slot.CompareAndSwap(due, t+int64(ExemplarInterval)) {
				// ObserveWithExemplar copies the labels; reuse the map.
				l := exemplarLabels.Get().(prometheus.Labels)
				l["trace_id"] = sc.TraceID().String()
				h.eo.ObserveWithExemplar(v, l)
				exemplarLabels.Put(l)
				return
			}
		}
	}
	h.obs.Observe(v)
}

var exemplarLabels = sync.Pool{New: func() any { return make(prometheus.Labels, 1) }}

// replyCounter wraps a ReplyWriter to see every reply of one call. A
// call's replies are sent by one goroutine, so it needs no lock; the
// handler reads it after ServeRPC returns.
type replyCounter struct {
	gate.ReplyWriter
	live *serverCall // optional: the worker's live counters
	// wireExc decodes remote exceptions from final reply bodies (at the
	// broker, where Reply.Err is never set).
	wireExc bool

	replies     int
	bytes       int
	streamItems int
	hugeChunks  int
	hugeBytes   int // compressed, as on the wire
	hugeRaw     int // uncompressed where known
	kind        gate.ReplyKind
	replyErr    error
	errKind     bool
}

func (c *replyCounter) Send(ctx context.Context, r *gate.Reply) error {
	if r != nil {
		c.count(r)
	}
	return c.ReplyWriter.Send(ctx, r)
}

// count records r.
func (c *replyCounter) count(r *gate.Reply) {
	c.replies++
	n := r.Size()
	c.bytes += n
	switch r.Kind {
	case gate.ReplyStreamItem:
		if wire.IsStreamBatch(r.Body) { // at the broker: several items in one message
			k, _ := codec.CountValues(r.Body[2])
			c.streamItems += k
		} else {
			c.streamItems++
		}
		c.kind = gate.ReplyStreamItem
	case gate.ReplyHugeChunk:
		c.hugeChunks++
		c.hugeBytes += n
		if b, ok := r.Value.([]byte); ok {
			c.hugeRaw += len(b)
		}
		c.kind = gate.ReplyHugeChunk
	case gate.ReplyStreamEnd, gate.ReplyStreamError:
		c.kind = gate.ReplyStreamItem
	case gate.ReplyHugeEnd, gate.ReplyHugeError:
		c.kind = gate.ReplyHugeChunk
	default:
		if c.kind == 0 {
			c.kind = r.Kind
		}
	}
	if r.Err != nil && c.replyErr == nil {
		c.replyErr = r.Err
	}
	if c.wireExc && r.Err == nil && c.replyErr == nil && r.Kind.Final() {
		c.replyErr = wireException(r)
	}
	if r.Kind.IsError() {
		c.errKind = true
	}
	if c.live != nil {
		c.live.sent(r)
	}
}

// wireException decodes the remote exception of a final reply body, or
// returns nil.
func wireException(r *gate.Reply) error {
	var (
		exc *codec.Exception
		err error
	)
	switch r.Kind {
	case gate.ReplySingle:
		if len(r.Body) == 0 || codec.HasNoException(r.Body[0]) {
			return nil // the common case, without decoding the value
		}
		_, exc, err = codec.DecodeReply(r.Body[0])
	case gate.ReplyStreamError, gate.ReplyHugeError:
		_, payload := wire.ClassifyReply(r.Body)
		exc, err = codec.DecodeTriple(payload)
	default:
		return nil
	}
	if err != nil || exc == nil { // not ours to judge: the client decodes it
		return nil
	}
	return gatehook.NewError(exc.Class, exc.Repr, exc.Traceback)
}

// code is the final status of a call: the handler's error first, then a
// remote exception or error marker among the replies.
func (c *replyCounter) code(err error) gate.Code {
	switch {
	case err != nil:
		return gate.CodeOf(err)
	case c.replyErr != nil:
		return gate.CodeOf(c.replyErr)
	case c.errKind:
		return gate.Unknown
	}
	return gate.OK
}

// replyKindName is the gaterpc.reply.kind value.
func (c *replyCounter) replyKindName() string {
	switch c.kind {
	case gate.ReplyStreamItem:
		return "stream"
	case gate.ReplyHugeChunk:
		return "huge"
	case 0:
		return "none"
	}
	return "single"
}

func requestSize(req *gate.Request) (int, bool) {
	if req.Body == nil {
		return 0, false
	}
	n := 0
	for _, f := range req.Body {
		n += len(f)
	}
	return n, true
}

// red holds the rate/error/duration histograms of one side of a call.
type red struct {
	cfg      *config
	methods  *labelSet
	duration *prometheus.HistogramVec
	reqSize  *prometheus.HistogramVec
	respSize *prometheus.HistogramVec

	// The children of each method label, found with one lock-free map
	// lookup per call: by (service, method) for known methods, by label
	// for the rest (_OTHER). Both are bounded by the label set.
	byKey   cowMap[methodKey, *methodSeries]
	byLabel cowMap[string, *methodSeries]
}

// numFastCodes is how many status codes (from OK up) a methodSeries holds
// its duration histograms for in an array; higher codes go through a map.
const numFastCodes = 16

// methodSeries is the metric children of one method label.
type methodSeries struct {
	m        *red
	label    string
	reqSize  lazyObserver
	respSize lazyObserver
	// inflight is the worker's gauge of the method's service (nil at the
	// client).
	inflight prometheus.Gauge

	durations [numFastCodes]atomic.Pointer[histogram] // by code, made at first use
	slow      cowMap[gate.Code, *histogram]
}

// lazyObserver is the child of one label value of a HistogramVec, made
// at its first observation (so that a series appears only once used).
type lazyObserver struct {
	p     atomic.Pointer[prometheus.Observer]
	vec   *prometheus.HistogramVec
	label string
}

func (l *lazyObserver) get() prometheus.Observer {
	if p := l.p.Load(); p != nil {
		return *p
	}
	o := l.vec.WithLabelValues(l.label)
	l.p.Store(&o) // a racing store holds the same child
	return o
}

// duration returns the duration histogram of code.
func (s *methodSeries) duration(code gate.Code) *histogram {
	if int(code) < numFastCodes {
		if h := s.durations[code].Load(); h != nil {
			return h
		}
		h := s.m.newDuration(s.label, code)
		s.durations[code].Store(h) // a racing store holds the same child
		return h
	}
	if h, ok := s.slow.load(code); ok {
		return h
	}
	h, _ := s.slow.store(code, s.m.newDuration(s.label, code), 256)
	return h
}

func (m *red) newDuration(label string, code gate.Code) *histogram {
	return newHistogram(m.duration.WithLabelValues(label, code.String()), m.cfg.buckets, m.cfg.exemplars)
}

func newRED(c *config, side string) *red {
	return &red{
		cfg:     c,
		methods: newLabelSet(c.methods, c.maxMethods),
		duration: prometheus.NewHistogramVec(histogramOpts(c, "rpc_"+side+"_call_duration_seconds",
			"Duration of RPC calls measured at the "+side+", by method and status code.", c.buckets),
			[]string{labelMethod, labelStatus}),
		reqSize: prometheus.NewHistogramVec(histogramOpts(c, "rpc_"+side+"_request_size_bytes",
			"Size of RPC request bodies measured at the "+side+".", c.sizeBuckets), []string{labelMethod}),
		respSize: prometheus.NewHistogramVec(histogramOpts(c, "rpc_"+side+"_response_size_bytes",
			"Total size of the reply bodies of one RPC call measured at the "+side+".", c.sizeBuckets), []string{labelMethod}),
	}
}

func (m *red) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.reqSize, m.respSize}
}

// series returns the children of info's method. inflight, when not nil,
// gives the series of a known method its service's gauge (the series of
// _OTHER serves every service and has none).
func (m *red) series(info gate.Info, inflight func(service string) prometheus.Gauge) *methodSeries {
	k := methodKey{info.Service, info.Method}
	if s, ok := m.byKey.load(k); ok {
		return s
	}
	label, known := m.methods.method(info)
	s, ok := m.byLabel.load(label)
	if !ok {
		s = &methodSeries{m: m, label: label}
		s.reqSize.vec, s.reqSize.label = m.reqSize, label
		s.respSize.vec, s.respSize.label = m.respSize, label
		if inflight != nil && known {
			s.inflight = inflight(info.Service)
		}
		s, _ = m.byLabel.store(label, s, m.methods.max+1)
	}
	if known {
		m.byKey.store(k, s, m.methods.max)
	}
	return s
}

// serve runs next and records the call in s.
func (m *red) serve(ctx context.Context, req *gate.Request, w gate.ReplyWriter, next gate.Handler,
	rc *replyCounter, s *methodSeries) error {
	start := m.cfg.clock()
	rc.ReplyWriter = w
	err := next.ServeRPC(ctx, req, rc)
	end := m.cfg.clock()
	s.duration(rc.code(err)).observe(ctx, (end - start).Seconds(), end)
	if n, ok := requestSize(req); ok {
		s.reqSize.get().Observe(float64(n))
	}
	if rc.replies > 0 {
		s.respSize.get().Observe(float64(rc.bytes))
	}
	return err
}

// ClientMetrics records RPC metrics at the client hop:
// rpc_client_call_duration_seconds{rpc_method, rpc_response_status_code}
// and rpc_client_{request,response}_size_bytes{rpc_method}, each attempt
// of a retried call (gate.WithRetry) counted as one call; and
// gaterpc_client_retries_total{rpc_method, rpc_response_status_code}, the
// retries (attempts after the first) by outcome. It is safe for concurrent
// use.
type ClientMetrics struct {
	red     *red
	retries *prometheus.CounterVec
}

// NewClientMetrics creates the client metrics and registers them with
// reg (nil: not registered). Options: WithMethods, WithMaxMethods,
// WithBuckets, WithSizeBuckets, WithNativeHistograms, WithExemplars. The
// error is reg's registration error.
func NewClientMetrics(reg prometheus.Registerer, opts ...Option) (*ClientMetrics, error) {
	m := &ClientMetrics{red: newRED(newConfig(opts), "client"),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaterpc_client_retries_total",
			Help: "Retries of idempotent calls (attempts after the first), by method and the attempt's status code.",
		}, []string{labelMethod, labelStatus}),
	}
	if err := register(reg, append(m.red.collectors(), m.retries)...); err != nil {
		return nil, err
	}
	return m, nil
}

// Middleware returns the client middleware. Place it after Tracing in a
// Chain (tracing outermost) so that exemplars carry the call's trace id.
func (m *ClientMetrics) Middleware() gate.Middleware {
	return func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			s := m.red.series(req.Info(), nil)
			rc := &replyCounter{}
			err := m.red.serve(ctx, req, w, next, rc, s)
			if req.Attempt() > 1 {
				m.retries.WithLabelValues(s.label, rc.code(err).String()).Inc()
			}
			return err
		})
	}
}

// serverCall is the state of one call at the worker's metrics middleware,
// allocated once per call: its reply counter, and the stream and huge-data
// counters of its method, looked up at the first reply that needs them.
type serverCall struct {
	rc           replyCounter
	m            *ServerMetrics
	method       string
	stream       prometheus.Counter
	hugeC, hugeR prometheus.Counter
}

// sent counts r in the worker's live counters.
func (c *serverCall) sent(r *gate.Reply) {
	switch r.Kind {
	case gate.ReplyStreamItem:
		if c.stream == nil {
			c.stream = c.m.streamMsg.WithLabelValues(c.method)
		}
		c.stream.Inc()
	case gate.ReplyHugeChunk:
		if c.hugeC == nil {
			c.hugeC = c.m.hugeBytes.WithLabelValues(c.method, "compressed")
			c.hugeR = c.m.hugeBytes.WithLabelValues(c.method, "raw")
		}
		c.hugeC.Add(float64(r.Size()))
		if b, ok := r.Value.([]byte); ok {
			c.hugeR.Add(float64(len(b)))
		}
	case gate.ReplyHugeEnd:
		// A gate worker's end marker carries the payload size before
		// compression.
		if n, ok := r.Value.(int); ok && n > 0 {
			if c.hugeR == nil {
				c.hugeR = c.m.hugeBytes.WithLabelValues(c.method, "raw")
			}
			c.hugeR.Add(float64(n))
		}
	}
}

// ServerMetrics records RPC metrics at the worker hop:
// rpc_server_call_duration_seconds, rpc_server_{request,response}_size_bytes
// and the worker metrics gaterpc_worker_inflight_requests{service},
// gaterpc_worker_executor_queue_depth{service, executor},
// gaterpc_worker_stream_messages_total{rpc_method} and
// gaterpc_worker_huge_data_bytes_total{rpc_method, kind}. It is safe for
// concurrent use.
type ServerMetrics struct {
	red       *red
	services  *labelSet
	executors *labelSet
	inflight  *prometheus.GaugeVec
	execDepth *prometheus.GaugeVec
	streamMsg *prometheus.CounterVec
	hugeBytes *prometheus.CounterVec
	gauges    *cache[string, prometheus.Gauge] // inflight by raw service name
}

// NewServerMetrics creates the worker metrics and registers them with reg
// (nil: not registered). Options as for NewClientMetrics, plus
// WithMaxServices.
func NewServerMetrics(reg prometheus.Registerer, opts ...Option) (*ServerMetrics, error) {
	c := newConfig(opts)
	m := &ServerMetrics{
		red:       newRED(c, "server"),
		services:  newLabelSet(nil, c.maxServices),
		executors: newLabelSet(nil, 100),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gaterpc_worker_inflight_requests",
			Help: "Requests running on this worker, by service.",
		}, []string{labelService}),
		execDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gaterpc_worker_executor_queue_depth",
			Help: "Tasks waiting for an executor of this worker, by service and executor.",
		}, []string{labelService, labelExecutor}),
		streamMsg: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaterpc_worker_stream_messages_total",
			Help: "Stream items sent by this worker, by method.",
		}, []string{labelMethod}),
		hugeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaterpc_worker_huge_data_bytes_total",
			Help: "Bytes of huge replies sent by this worker, by method and kind (raw = before compression, compressed = on the wire).",
		}, []string{labelMethod, labelKind}),
	}
	m.gauges = newCache(m.services.max, func(service string) prometheus.Gauge {
		return m.inflight.WithLabelValues(m.services.lookup(service))
	})
	cs := append(m.red.collectors(), m.inflight, m.execDepth, m.streamMsg, m.hugeBytes)
	if err := register(reg, cs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Middleware returns the worker middleware. Place it after Tracing in a
// Chain (tracing outermost) so that exemplars carry the call's trace id.
// Huge-reply chunks are counted as compressed bytes from Reply.Body, and
// as raw bytes from the end marker's Value (the payload size before
// compression, an int, as a gate worker sends it) or when a chunk's
// Value is its []byte before compression.
func (m *ServerMetrics) Middleware() gate.Middleware {
	return func(next gate.Handler) gate.Handler {
		return gate.HandlerFunc(func(ctx context.Context, req *gate.Request, w gate.ReplyWriter) error {
			info := req.Info()
			s := m.red.series(info, m.gauges.get)
			g := s.inflight
			if g == nil {
				g = m.gauges.get(info.Service)
			}
			g.Inc()
			defer g.Dec()
			sc := &serverCall{m: m, method: s.label}
			rc := &sc.rc
			rc.live = sc
			return m.red.serve(ctx, req, w, next, rc, s)
		})
	}
}

// SetExecutorQueueDepth sets gaterpc_worker_executor_queue_depth for one
// executor of a service. A worker calls it (as a plain func value, so the
// worker need not import telemetry) whenever the depth changes.
func (m *ServerMetrics) SetExecutorQueueDepth(service, executor string, depth int) {
	m.execDepth.WithLabelValues(m.services.lookup(service), m.executors.lookup(executor)).Set(float64(depth))
}

// AddHugeRawBytes adds n uncompressed bytes of a huge reply of
// Service/method to gaterpc_worker_huge_data_bytes_total{kind="raw"}, for
// workers whose Reply.Value does not carry the raw chunk.
func (m *ServerMetrics) AddHugeRawBytes(service, method string, n int) {
	label, _ := m.red.methods.method(gate.Info{Service: service, Method: method})
	m.hugeBytes.WithLabelValues(label, "raw").Add(float64(n))
}
