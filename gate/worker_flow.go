package gate

import (
	"context"
	"errors"
	"sync"

	"github.com/gaterpc/gate/internal/wire"
)

// flowCtl holds one relayed call's stream items and HugeData chunks to
// the reader's window (docs/flow-control.md): the producer may have sent
// at most the window beyond the reader's cumulative credit, which the
// broker relays as CmdCredit. The socket loop only grants (grant never
// blocks); the producer waits in acquire.
type flowCtl struct {
	win    wire.Window
	wake   chan struct{} // capacity 1: a grant since the producer last looked
	mu     sync.Mutex
	sent   wire.Credit // items and payload bytes handed to the loop
	credit wire.Credit // the highest credit received, per field
}

func newFlowCtl(win wire.Window) *flowCtl {
	return &flowCtl{win: win, wake: make(chan struct{}, 1)}
}

// grant records a credit (cumulative: the larger value of each field
// wins, so duplicates and reordering are harmless) and wakes the
// producer. It never blocks.
func (f *flowCtl) grant(c wire.Credit) {
	f.mu.Lock()
	f.credit.Items = max(f.credit.Items, c.Items)
	f.credit.Bytes = max(f.credit.Bytes, c.Bytes)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// acquire waits until the window lets one more message of n payload bytes
// go, and counts it as sent. It returns an error when ctx or call (the
// call's own ctx: CANCEL, deadline, worker shutdown) ends first.
func (f *flowCtl) acquire(ctx, call context.Context, n int) error {
	for {
		f.mu.Lock()
		if f.win.MaySend(f.sent, f.credit) {
			f.sent.Items++
			f.sent.Bytes += int64(n)
			f.mu.Unlock()
			return nil
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return flowWaitError(ctx.Err())
		case <-call.Done():
			return flowWaitError(call.Err())
		}
	}
}

// flowWaitError is what a reply writer returns when the call ended while
// it waited for credit. A cancelled call gets context.Canceled (the
// caller is gone: the worker sends only its final reply); a deadline
// gets a TimeoutError the stream or HugeData reply ends with.
func flowWaitError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return Errorf(DeadlineExceeded, "deadline exceeded waiting for the reader's flow-control credit")
	}
	return err
}

// flowFor returns the flow control of a request whose id carries both
// MetaWindow and MetaRelay (only then do the reader's credits reach this
// worker), or nil.
func flowFor(md map[string]string) *flowCtl {
	ws, ok := md[wire.MetaWindow]
	if relay := md[wire.MetaRelay]; !ok || (relay != wire.RelayCredit && relay != wire.RelayBatch) {
		return nil
	}
	win, err := wire.ParseWindow(ws)
	if err != nil {
		return nil
	}
	return newFlowCtl(win)
}

// batchFor returns the most stream items per message for a request whose
// client accepts batches (MetaBatch) and whose broker counts them
// (MetaRelay = RelayBatch), or 0.
func batchFor(md map[string]string) int {
	bs, ok := md[wire.MetaBatch]
	if !ok || md[wire.MetaRelay] != wire.RelayBatch || md[wire.MetaWindow] == "" {
		return 0
	}
	n, err := wire.ParseBatch(bs)
	if err != nil {
		return 0
	}
	return n
}

// chunkFor returns the HugeData chunk size a request asks for with
// MetaChunk, or 0 (then the worker uses Settings.HugeDataSizeOf).
func chunkFor(md map[string]string) int {
	cs, ok := md[wire.MetaChunk]
	if !ok {
		return 0
	}
	n, err := wire.ParseChunk(cs)
	if err != nil {
		return 0
	}
	return n
}

// held reports whether a reply of kind k waits for the window: stream
// items and HugeData chunks do; end and error markers never do.
func held(k ReplyKind) bool { return k == ReplyStreamItem || k == ReplyHugeChunk }

// credit applies a CmdCredit from the loop to the call it names. A credit
// that comes before the call's goroutine has set up its flow control is
// kept on the call and applied then; one for a call not in flight is
// dropped.
func (w *Worker) credit(key string, c wire.Credit) {
	w.mu.Lock()
	wc := w.inflight[key]
	if wc == nil {
		w.mu.Unlock()
		return
	}
	f := wc.flow
	if f == nil {
		wc.early.Items = max(wc.early.Items, c.Items)
		wc.early.Bytes = max(wc.early.Bytes, c.Bytes)
	}
	w.mu.Unlock()
	if f != nil {
		f.grant(c)
	}
}
