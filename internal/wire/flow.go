package wire

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Flow control between gate peers (docs/flow-control.md). A gate client
// that wants flow control puts MetaWindow (and optionally MetaChunk) into
// its request id's metadata. A gate broker that dispatches the request to
// a worker that announced GateCapabilityFlow adds MetaRelay: only then
// does the worker hold its stream items and HugeData chunks to the
// window, because only then do the reader's credits reach it. The client
// grants credit with the internal-service call Gate.credit; the broker
// relays it to the worker as CmdCredit. 0.2.12 peers never see any of it:
// they echo request ids verbatim, and CmdCredit goes only to workers that
// announced the capability.
const (
	// GateCapabilityFlow is GateCapabilityAck plus flow control: the worker
	// understands CmdCredit and honours MetaWindow when MetaRelay is set.
	GateCapabilityFlow = "gaterpc/3"

	// MetaWindow is the reader's window, "items,bytes" in decimal: the
	// most stream items or HugeData chunks, and the most payload bytes,
	// the producer may have sent beyond the reader's credit.
	MetaWindow = "gate.window"
	// MetaChunk is the HugeData chunk size the reader asks for, decimal
	// bytes, within [MinChunk, MaxChunk]. A gate worker honours it through
	// any broker; without it the worker uses its own HugeDataSizeOf.
	MetaChunk = "gate.chunk"
	// MetaRelay is set by a gate broker, never by a client: the broker
	// relays Gate.credit for this request to this worker as CmdCredit.
	// RelayCredit ("1") towards GateCapabilityFlow workers, RelayBatch
	// ("2") towards GateCapabilityBatch workers. A gate broker strips a
	// client-supplied MetaRelay.
	MetaRelay = "gate.relay"
	// RelayCredit is the MetaRelay value of a broker that relays credit.
	RelayCredit = "1"
	// RelayBatch is the MetaRelay value of a broker that relays credit and
	// counts every item of a batched stream message (StreamBatchBody)
	// against the window: with it, and with MetaBatch from the client, the
	// worker may batch stream items.
	RelayBatch = "2"
	// MetaBatch is the most stream items per REPLY message the client
	// accepts, decimal, within [MinBatch, MaxBatch]: the client splits a
	// batch (StreamBatchBody) into its items.
	MetaBatch = "gate.batch"

	// GateCapabilityBatch is GateCapabilityFlow plus batched stream items:
	// the worker understands MetaRelay = RelayBatch and then, for a client
	// that sent MetaBatch, may put several stream items into one REPLY.
	GateCapabilityBatch = "gaterpc/4"

	// CreditFunction is the internal-service function a reader calls to
	// grant credit: Gate.credit(request_id bin, items uint, bytes uint),
	// with cumulative totals consumed so far. It is one-way: a gate broker
	// never answers it.
	CreditFunction = "credit"

	// Window and chunk bounds a parser accepts.
	MinWindowItems = 1
	MaxWindowItems = 1 << 20
	MinWindowBytes = 1 << 10
	MaxWindowBytes = 1 << 30
	MinChunk       = 1000
	MaxChunk       = 4 << 20
	MinBatch       = 2
	MaxBatch       = 1024
)

// CmdCredit (broker to worker, only to workers that announced
// GateCapabilityFlow) carries a reader's cumulative credit:
// ” | MDPW01 | 0x07 | client-id | ” | request-id | credit
// with request-id exactly as sent in the REQUEST and credit as
// AppendCredit encodes it.
const CmdCredit Command = 0x07

// Window is a reader's flow-control window.
type Window struct {
	Items int64 // stream items or HugeData chunks
	Bytes int64 // payload bytes (the item or chunk frame; tags not counted)
}

// String is the MetaWindow encoding "items,bytes".
func (w Window) String() string {
	return strconv.FormatInt(w.Items, 10) + "," + strconv.FormatInt(w.Bytes, 10)
}

// ParseWindow parses a MetaWindow value. Out-of-range values are errors.
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return Window{}, perr(ReasonExtension, "window %q: want items,bytes", truncate([]byte(s)))
	}
	items, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || items < MinWindowItems || items > MaxWindowItems || n < MinWindowBytes || n > MaxWindowBytes {
		return Window{}, perr(ReasonExtension, "window %q out of range", truncate([]byte(s)))
	}
	return Window{Items: items, Bytes: n}, nil
}

// ParseChunk parses a MetaChunk value.
func ParseChunk(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < MinChunk || n > MaxChunk {
		return 0, perr(ReasonExtension, "chunk size %q: want %d..%d", truncate([]byte(s)), MinChunk, MaxChunk)
	}
	return n, nil
}

// ParseBatch parses a MetaBatch value.
func ParseBatch(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < MinBatch || n > MaxBatch {
		return 0, perr(ReasonExtension, "batch %q: want %d..%d", truncate([]byte(s)), MinBatch, MaxBatch)
	}
	return n, nil
}

// Credit is a reader's cumulative consumption of one request's replies.
type Credit struct {
	Items int64
	Bytes int64
}

// AppendCredit appends the CmdCredit payload: two uvarints, items then
// bytes.
func AppendCredit(b []byte, c Credit) []byte {
	b = binary.AppendUvarint(b, uint64(c.Items))
	return binary.AppendUvarint(b, uint64(c.Bytes))
}

// ParseCredit parses a CmdCredit payload (minimal uvarints, no trailing
// bytes, each value below 2^62).
func ParseCredit(p []byte) (Credit, error) {
	var v [2]uint64
	for i := range v {
		x, n := binary.Uvarint(p)
		if n <= 0 || n != uvarintLen(x) || x >= 1<<62 {
			return Credit{}, perr(ReasonBody, "bad credit payload")
		}
		v[i], p = x, p[n:]
	}
	if len(p) != 0 {
		return Credit{}, perr(ReasonBody, "credit payload: %d trailing bytes", len(p))
	}
	return Credit{Items: int64(v[0]), Bytes: int64(v[1])}, nil
}

// Outstanding reports what a producer has sent beyond the credit.
func (c Credit) Outstanding(sent Credit) Credit {
	return Credit{Items: sent.Items - c.Items, Bytes: sent.Bytes - c.Bytes}
}

// MaySend reports whether a producer that has sent sent and received
// credit c may send one more item or chunk under window w: fewer than
// w.Items items and fewer than w.Bytes bytes outstanding. A single message
// larger than the window therefore still goes out once nothing is
// outstanding. Final replies (end and error markers) are never held back.
func (w Window) MaySend(sent, c Credit) bool {
	o := c.Outstanding(sent)
	return o.Items < w.Items && o.Bytes < w.Bytes
}
