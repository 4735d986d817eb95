package chunk

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Wrapped errors add detail; test them with
// [errors.Is].
var (
	// ErrInvalidOption reports a bad option or compression level.
	ErrInvalidOption = errors.New("chunk: invalid option")
	// ErrUnknownCompressor reports a compressor name nobody registered.
	ErrUnknownCompressor = errors.New("chunk: unknown compressor")
	// ErrTooLarge reports a payload over the decompressed or the compressed
	// size cap. The receiver stops the moment a cap is crossed.
	ErrTooLarge = errors.New("chunk: payload too large")
	// ErrCorrupt reports a payload that is not a valid stream of its format:
	// bad magic or header, bad data, bad checksum, or trailing garbage.
	ErrCorrupt = errors.New("chunk: corrupt payload")
	// ErrTruncated reports a payload that ended before its stream did.
	ErrTruncated = errors.New("chunk: truncated payload")
	// ErrEmpty reports that no non-empty chunk arrived before Finish. The
	// 0.2.12 sender produces this when its compressor fails (quirk 18).
	ErrEmpty = errors.New("chunk: empty payload")
	// ErrClosed reports use of a Sender or Assembler after Close or Finish.
	ErrClosed = errors.New("chunk: closed")
)

// Defaults, matching gaterpc 0.2.12 where it has a counterpart.
const (
	// DefaultCompression is the compressor used when none is configured.
	DefaultCompression = GzipName
	// DefaultLevel is the sender's compression level (HugeData's default).
	DefaultLevel = 1
	// DefaultChunkSize is the size of every chunk but the last (blksize).
	DefaultChunkSize = 1000
	// MinChunkSize keeps the first chunk long enough for the Python
	// receiver, which parses the 10-byte gzip header from its first slice.
	MinChunkSize = 10
	// DefaultMaxSize caps the decompressed payload, as Python does.
	DefaultMaxSize = 256 << 20
	// DefaultMaxCompressedSize caps the compressed bytes received.
	DefaultMaxCompressedSize = DefaultMaxSize + 4<<20
	// DefaultLookahead is how many compressed bytes the receiver buffers
	// before it decompresses; see [WithLookahead].
	DefaultLookahead = 2 << 20
	// MinLookahead is the smallest lookahead [WithLookahead] accepts.
	MinLookahead = 256 << 10
)

// Option configures a [Sender] or an [Assembler]. Options that concern only
// one side are ignored by the other.
type Option func(*options)

type options struct {
	name          string
	comp          Compressor
	level         int
	chunkSize     int
	emptyChunk    bool
	maxSize       int64
	maxCompressed int64
	lookahead     int
	sizeHint      func(prefix []byte) (int64, bool)
	pipeline      int
	err           error
}

func defaultOptions() options {
	return options{
		name:          DefaultCompression,
		level:         DefaultLevel,
		chunkSize:     DefaultChunkSize,
		emptyChunk:    true,
		maxSize:       DefaultMaxSize,
		maxCompressed: DefaultMaxCompressedSize,
		lookahead:     DefaultLookahead,
	}
}

func buildOptions(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.err != nil {
		return o, o.err
	}
	if o.comp == nil {
		c, ok := Lookup(o.name)
		if !ok {
			return o, fmt.Errorf("%w: %q", ErrUnknownCompressor, o.name)
		}
		o.comp = c
	}
	return o, nil
}

func (o *options) invalid(format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
	}
}

// WithCompression selects a registered compressor by name ("gzip", "zstd",
// "bzip2"/"bz2", "xz"/"lzma" or one added with [Register]). The sender
// compresses with it; the receiver falls back to it when the payload's magic
// number is not recognised. Unknown names make the constructor fail with
// [ErrUnknownCompressor].
func WithCompression(name string) Option {
	return func(o *options) { o.name, o.comp = name, nil }
}

// WithCompressor uses c directly, for example Gzip{Now: fixedClock}. It
// plays the role of [WithCompression] and is never sniffed. A nil c keeps the
// default.
func WithCompressor(c Compressor) Option {
	return func(o *options) {
		if c != nil {
			o.name, o.comp = "", c
		}
	}
}

// WithLevel sets the sender's compression level (default [DefaultLevel]).
func WithLevel(level int) Option {
	return func(o *options) { o.level = level }
}

// WithChunkSize sets the size of every chunk but the last; it must be at
// least [MinChunkSize]. The default is [DefaultChunkSize].
func WithChunkSize(n int) Option {
	return func(o *options) {
		if n < MinChunkSize {
			o.invalid("chunk size %d < %d", n, MinChunkSize)
			return
		}
		o.chunkSize = n
	}
}

// WithEmptyChunk controls whether the sender emits an empty chunk after the
// data, as gaterpc 0.2.12 always does (the default, true).
func WithEmptyChunk(on bool) Option {
	return func(o *options) { o.emptyChunk = on }
}

// WithMaxSize caps the receiver's decompressed output (default
// [DefaultMaxSize]); it must be positive.
func WithMaxSize(n int64) Option {
	return func(o *options) {
		if n <= 0 {
			o.invalid("max size %d", n)
			return
		}
		o.maxSize = n
	}
}

// WithMaxCompressedSize caps the compressed bytes the receiver accepts
// (default [DefaultMaxCompressedSize]); it must be positive.
func WithMaxCompressedSize(n int64) Option {
	return func(o *options) {
		if n <= 0 {
			o.invalid("max compressed size %d", n)
			return
		}
		o.maxCompressed = n
	}
}

// WithLookahead sets how many compressed bytes the receiver buffers before it
// decompresses, at least [MinLookahead] (default [DefaultLookahead]). The
// receiver holds at most lookahead plus one chunk of compressed input. A
// stream whose decoder needs more than lookahead bytes of input to make
// progress (a long run of empty deflate blocks, or a bzip2 block over the
// lookahead: up to about 1 MiB at level 9) is rejected with [ErrCorrupt].
func WithLookahead(n int) Option {
	return func(o *options) {
		if n < MinLookahead {
			o.invalid("lookahead %d < %d", n, MinLookahead)
			return
		}
		o.lookahead = n
	}
}

// SizeHintLen is how many decompressed bytes an Assembler gathers before it
// asks the [WithSizeHint] function for the payload's size.
const SizeHintLen = 16

// WithSizeHint gives the Assembler a way to learn the decompressed size
// from the first [SizeHintLen] decompressed bytes (fewer when the payload
// is shorter), such as the header of a msgpack bin or str. When hint
// reports a size, the Assembler stores the payload in one buffer of
// exactly that size, and refuses a size over [WithMaxSize] with
// [ErrTooLarge] before it decompresses any further. A hint that turns out
// short is harmless: the output continues in further buffers. Ignored by
// the Sender.
func WithSizeHint(hint func(prefix []byte) (size int64, ok bool)) Option {
	return func(o *options) { o.sizeHint = hint }
}

// MaxPipeline is the largest depth [WithPipeline] accepts.
const MaxPipeline = 16

// WithPipeline makes the [Sender] emit chunks on a goroutine of its own
// while Write goes on compressing: at most depth finished chunks wait for
// emit, so a pipelined Sender holds at most depth+2 chunks (the queued
// ones, the one being emitted and the one being filled). depth 0 (the
// default) emits synchronously; depth must be at most [MaxPipeline]. A
// pipelined Sender must end with Close or Abort. Ignored by the Assembler.
func WithPipeline(depth int) Option {
	return func(o *options) {
		if depth < 0 || depth > MaxPipeline {
			o.invalid("pipeline depth %d: want 0..%d", depth, MaxPipeline)
			return
		}
		o.pipeline = depth
	}
}
