package gate

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/gaterpc/gate/internal/codec"
)

// childEnv is the environment variable that marks a process started by a
// [ProcessPool] as a child: [RunChildIfRequested] serves requests when it
// is "1".
const childEnv = "GATE_CHILD"

// maxProcFrame caps one parent↔child frame.
const maxProcFrame = 1 << 30

// Child reply kinds.
const (
	procValue = iota // payload: encoded value
	procHuge         // payload: encoded value, to send as HugeData
	procError        // payload: encoded [class, repr, traceback]
)

// ProcessFunc is a function a [ProcessPool] can run in a child process.
// Create it with [MustProcessFunc] in a package-level variable, so that
// the child, which re-executes the same binary, knows it too, then
// register it with [Service.Register] and [WithExecutor](pool).
type ProcessFunc struct {
	name string
	fn   any
	a    *funcAdapter
}

var procFuncs = struct {
	sync.RWMutex
	m map[string]*ProcessFunc
}{m: map[string]*ProcessFunc{}}

// MustProcessFunc adds fn to the process-wide table of functions children
// can run, under a name unique in the program (e.g. "demo.cpu"). fn has
// the shapes [Service.Register] accepts, except that it must not return a
// stream. Like regexp.MustCompile it panics on a programming error (bad
// fn, duplicate name); call it during package initialisation.
func MustProcessFunc(name string, fn any) *ProcessFunc {
	a, err := newFuncAdapter(name, fn)
	if err != nil {
		panic(fmt.Sprintf("gate: MustProcessFunc(%q): %v", name, err))
	}
	if a.swIdx >= 0 {
		panic(fmt.Sprintf("gate: MustProcessFunc(%q): a ProcessPool cannot stream (*StreamWriter parameter)", name))
	}
	procFuncs.Lock()
	defer procFuncs.Unlock()
	if _, dup := procFuncs.m[name]; dup {
		panic(fmt.Sprintf("gate: MustProcessFunc(%q): duplicate name", name))
	}
	pf := &ProcessFunc{name: name, fn: fn, a: a}
	procFuncs.m[name] = pf
	return pf
}

// Name returns the function's process-wide name.
func (p *ProcessFunc) Name() string { return p.name }

// RunChildIfRequested makes this process a ProcessPool child if it was
// started as one (GATE_CHILD=1): it serves function calls from its parent
// until the parent closes the pipe, then returns true, and the caller
// should exit. Otherwise it returns false at once. Call it first thing in
// main (and in TestMain for tests that use a ProcessPool):
//
//	func main() {
//		if gate.RunChildIfRequested() {
//			return
//		}
//		...
//	}
func RunChildIfRequested() bool {
	if os.Getenv(childEnv) != "1" {
		return false
	}
	in := os.NewFile(3, "gate-requests")
	out := os.NewFile(4, "gate-replies")
	go watchParent(os.Getppid(), parentWatchInterval)
	serveChild(in, out)
	return true
}

// parentWatchInterval is how often a child checks that its worker lives.
const parentWatchInterval = 250 * time.Millisecond

// watchParent ends the child process when its parent is gone (the child is
// then re-parented, so its parent pid changes): a child busy with a long
// call does not read its request pipe, so it would not see the pipe close
// and would compute on for nobody.
func watchParent(ppid int, every time.Duration) {
	for {
		time.Sleep(every)
		if os.Getppid() != ppid {
			os.Exit(3)
		}
	}
}

func serveChild(in io.Reader, out io.Writer) {
	r := bufio.NewReader(in)
	bw := bufio.NewWriter(out)
	cdc, _ := codec.New()
	for {
		frame, err := readProcFrame(r)
		if err != nil {
			return
		}
		kind, payload := childCall(cdc, frame)
		resp, err := codec.Marshal([]any{kind, payload})
		if err != nil {
			return
		}
		if writeProcFrame(bw, resp) != nil || bw.Flush() != nil {
			return
		}
	}
}

// childCall runs one request: frame is msgpack [name, budget_µs, body...].
func childCall(cdc *codec.Codec, frame []byte) (kind int, payload []byte) {
	fail := func(err error, where string) (int, []byte) {
		class, repr, tb := exceptionTriple(err, where)
		b, _ := cdc.EncodeTriple(class, repr, tb)
		return procError, b
	}
	v, err := cdc.Decode(frame)
	req, _ := v.([]any)
	if err != nil || len(req) < 3 {
		return fail(Errorf(Internal, "process executor: bad request frame"), "")
	}
	name, _ := req[0].(string)
	budget, _ := req[1].(int64)
	body := make([][]byte, 0, len(req)-2)
	for _, f := range req[2:] {
		b, _ := f.([]byte)
		body = append(body, b)
	}
	procFuncs.RLock()
	pf := procFuncs.m[name]
	procFuncs.RUnlock()
	if pf == nil {
		return fail(Errorf(Unimplemented, "process function %s is not registered in the child (create it with MustProcessFunc at package level)", name), "")
	}
	ctx := context.Background()
	if budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(budget)*time.Microsecond)
		defer cancel()
	}
	_, args, kwargs, err := cdc.DecodeRequestBody(body)
	if err != nil {
		return fail(typeErrorf("malformed request: %v", err), "")
	}
	in, err := pf.a.bind(ctx, cdc, args, kwargs)
	if err != nil {
		return fail(err, "")
	}
	res, err := pf.a.call(in)
	if err != nil {
		return fail(err, pf.a.where())
	}
	kind = procValue
	if h, ok := res.(HugeValue); ok {
		if h.src != nil { // HugeFrom, HugeBinary: the parent gets the encoding in one piece
			b, err := h.encoding()
			if err != nil {
				return fail(Errorf(Internal, "%s: huge source: %v", name, err), pf.a.where())
			}
			return procHuge, b
		}
		kind, res = procHuge, h.v
	}
	if ok, _ := iterate(ctx, res, func(any) bool { return false }); ok {
		return fail(Errorf(Internal, "%s: streams cannot be returned from a ProcessPool", name), pf.a.where())
	}
	b, err := cdc.Marshal(res)
	if err != nil {
		return fail(encodeError(res, err), pf.a.where())
	}
	return kind, b
}

func readProcFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxProcFrame {
		return nil, fmt.Errorf("gate: process frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeProcFrame(w io.Writer, b []byte) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(b)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// ProcessPool runs [ProcessFunc] methods in child processes: the same
// binary re-executed with [childEnv]=1, which must call
// [RunChildIfRequested] first thing. Parent and child exchange
// length-prefixed msgpack frames over two pipes (the child's fds 3 and
// 4; its stdout and stderr go to the parent's stderr). Each child runs
// one call at a time; children start on demand, up to the pool size.
//
// A child that dies (crash, os.Exit, a kill after its call's ctx ended)
// fails only the call it was running, with a RuntimeError, and is
// replaced on the next call. The caller owns the pool and must Close it
// after the workers using it are closed. Safe for concurrent use.
type ProcessPool struct {
	size  int
	path  string
	args  []string
	slots chan struct{}
	idle  chan *child

	mu     sync.Mutex
	closed bool
	all    map[*child]struct{}
	wg     sync.WaitGroup // child reader goroutines
}

// ProcessOption configures a ProcessPool ([WithChildCommand]).
type ProcessOption interface{ applyProcess(*ProcessPool) }

type processOption func(*ProcessPool)

func (f processOption) applyProcess(p *ProcessPool) { f(p) }

// WithChildCommand sets the executable and arguments children run (by
// default os.Executable() without arguments).
func WithChildCommand(path string, args ...string) ProcessOption {
	return processOption(func(p *ProcessPool) { p.path, p.args = path, args })
}

// NewProcessPool returns a pool of at most size child processes. Errors
// wrap [ErrInvalidOption].
func NewProcessPool(size int, opts ...ProcessOption) (*ProcessPool, error) {
	if size < 1 {
		return nil, fmt.Errorf("gate: NewProcessPool(%d): %w: size must be at least 1", size, ErrInvalidOption)
	}
	p := &ProcessPool{size: size, slots: make(chan struct{}, size), idle: make(chan *child, size), all: map[*child]struct{}{}}
	for _, o := range opts {
		if o != nil {
			o.applyProcess(p)
		}
	}
	if p.path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("gate: NewProcessPool: %w: %v", ErrInvalidOption, err)
		}
		p.path = exe
	}
	return p, nil
}

// Size returns the maximum number of children.
func (p *ProcessPool) Size() int { return p.size }

// execute runs fn in the calling process: only ProcessFuncs go to
// children, through invoke.
func (p *ProcessPool) execute(ctx context.Context, fn func(context.Context) error) error {
	return fn(ctx)
}

type child struct {
	cmd   *exec.Cmd
	req   *os.File
	resp  *os.File
	out   chan []byte
	dead  chan struct{}
	exit  error
	wbuf  *bufio.Writer
	calls int
}

func (p *ProcessPool) spawn() (*child, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = []*os.File{reqR, respW}
	cmd.SysProcAttr = childSysProcAttr()
	err = cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return nil, err
	}
	c := &child{cmd: cmd, req: reqW, resp: respR, out: make(chan []byte, 1), dead: make(chan struct{}), wbuf: bufio.NewWriter(reqW)}
	p.mu.Lock()
	p.all[c] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(1)
	go p.read(c)
	return c, nil
}

// read owns c's reply pipe and reaps the process when it ends.
func (p *ProcessPool) read(c *child) {
	defer p.wg.Done()
	r := bufio.NewReader(c.resp)
	for {
		b, err := readProcFrame(r)
		if err != nil {
			break
		}
		c.out <- b // the caller waits for exactly one reply per request
	}
	c.resp.Close()
	c.exit = c.cmd.Wait()
	if c.exit == nil {
		c.exit = errors.New("exited")
	}
	p.mu.Lock()
	delete(p.all, c)
	p.mu.Unlock()
	close(c.dead)
}

func (p *ProcessPool) get() (*child, error) {
	for {
		select {
		case c := <-p.idle:
			select {
			case <-c.dead:
				c.req.Close()
				continue
			default:
				return c, nil
			}
		default:
			return p.spawn()
		}
	}
}

// invoke runs the ProcessFunc name in a child with the request body.
// invoke runs the ProcessFunc name in a child. started, if not nil, is
// called exactly once: when a slot is taken or when waiting for one ends.
func (p *ProcessPool) invoke(ctx context.Context, name string, body [][]byte, started func()) (any, error) {
	if started == nil {
		started = func() {}
	}
	select {
	case p.slots <- struct{}{}:
		started()
	case <-ctx.Done():
		started()
		return nil, ctx.Err()
	}
	defer func() { <-p.slots }()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, Errorf(Unavailable, "process pool closed")
	}
	c, err := p.get()
	if err != nil {
		return nil, Errorf(Internal, "process executor: start child: %v", err)
	}
	var budget int64
	if dl, ok := ctx.Deadline(); ok {
		budget = max(time.Until(dl).Microseconds(), 1)
	}
	req := make([]any, 0, 2+len(body))
	req = append(req, name, budget)
	for _, f := range body {
		req = append(req, f)
	}
	frame, err := codec.Marshal(req)
	if err != nil {
		p.idle <- c
		return nil, Errorf(Internal, "process executor: encode: %v", err)
	}
	err = writeProcFrame(c.wbuf, frame)
	if err == nil {
		err = c.wbuf.Flush()
	}
	if err != nil {
		p.discard(c)
		return nil, Errorf(Internal, "process executor: child process died: %v", err)
	}
	select {
	case b := <-c.out:
		c.calls++
		p.idle <- c
		return decodeProcReply(b)
	case <-c.dead:
		c.req.Close()
		return nil, Errorf(Internal, "process executor: child process died while running %s: %v", name, c.exit)
	case <-ctx.Done():
		p.discard(c)
		return nil, ctx.Err()
	}
}

// discard kills c and waits for it to be reaped.
func (p *ProcessPool) discard(c *child) {
	_ = c.cmd.Process.Kill()
	c.req.Close()
	<-c.dead
}

func decodeProcReply(b []byte) (any, error) {
	v, err := codec.Decode(b)
	rep, _ := v.([]any)
	if err != nil || len(rep) != 2 {
		return nil, Errorf(Internal, "process executor: bad reply frame")
	}
	kind, _ := rep[0].(int64)
	payload, _ := rep[1].([]byte)
	switch kind {
	case procValue:
		return codec.RawMessage(payload), nil
	case procHuge:
		return HugeValue{v: codec.RawMessage(payload)}, nil
	}
	exc, err := codec.DecodeTriple(payload)
	if err != nil {
		return nil, Errorf(Internal, "process executor: bad exception: %v", err)
	}
	return nil, exc
}

// Close stops every child (closing its request pipe, then killing it if
// it has not exited within a second) and waits for them. Calls after
// Close fail with ServiceUnAvailableError. Idempotent.
func (p *ProcessPool) Close() error {
	p.mu.Lock()
	p.closed = true
	children := make([]*child, 0, len(p.all))
	for c := range p.all {
		children = append(children, c)
	}
	p.mu.Unlock()
	for _, c := range children {
		c.req.Close()
	}
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for _, c := range children {
		select {
		case <-c.dead:
		case <-timer.C:
			_ = c.cmd.Process.Kill()
			<-c.dead
		}
	}
	p.wg.Wait()
	return nil
}
