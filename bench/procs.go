package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts and ends the child processes of a run. Every child gets
// SIGKILL from the kernel if the driver dies (Pdeathsig), and stopAll
// ends the ones still running at the end of the run, whatever the
// reason it ends.
type procs struct {
	logDir string
	mu     sync.Mutex
	live   map[*child]struct{}
	seq    int
}

type child struct {
	name  string
	cmd   *exec.Cmd
	lines chan string // stdout, line by line; closed at EOF
	done  chan struct{}
	err   error // exit status, once done is closed
	log   string
}

func newProcs(logDir string) *procs {
	return &procs{logDir: logDir, live: map[*child]struct{}{}}
}

// start runs path with args and env; its stderr goes to a log file.
func (p *procs) start(name string, env []string, path string, args ...string) (*child, error) {
	p.mu.Lock()
	p.seq++
	logPath := filepath.Join(p.logDir, fmt.Sprintf("%03d-%s.log", p.seq, name))
	p.mu.Unlock()
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	fmt.Fprintf(lf, "# %s %s\n", path, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{}), log: logPath}
	p.mu.Lock()
	p.live[c] = struct{}{}
	p.mu.Unlock()
	eof := make(chan struct{})
	go func() { // owns out; ends at EOF, when the child exits
		defer close(eof)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads a server's stdout after "ready"
			}
		}
		close(c.lines)
	}()
	go func() {
		// Wait closes the pipe, so it must come after the last read, or
		// the child's last line (a client's result) can be lost.
		<-eof
		c.err = cmd.Wait()
		lf.Close()
		p.mu.Lock()
		delete(p.live, c)
		p.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// alive reports whether the child still runs.
func (c *child) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// waitReady reads stdout until the "ready k=v ..." line and returns its
// fields.
func (c *child) waitReady(ctx context.Context, d time.Duration) (map[string]string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.done
				return nil, fmt.Errorf("%s exited before ready: %v (log %s)", c.name, c.err, c.log)
			}
			if rest, ok := strings.CutPrefix(line, "ready"); ok {
				kv := map[string]string{}
				for _, f := range strings.Fields(rest) {
					k, v, _ := strings.Cut(f, "=")
					kv[k] = v
				}
				return kv, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("%s not ready after %v (log %s)", c.name, d, c.log)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// result waits up to d for a client child's JSON result line and exit.
func (c *child) result(ctx context.Context, d time.Duration) (clientResult, error) {
	var res clientResult
	t := time.NewTimer(d)
	defer t.Stop()
	var got bool
	for !got {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.done
				return res, fmt.Errorf("%s: %v (log %s)", c.name, exitText(c), c.log)
			}
			if strings.HasPrefix(line, "{") {
				if err := json.Unmarshal([]byte(line), &res); err != nil {
					return res, fmt.Errorf("%s: result %q: %w", c.name, line, err)
				}
				got = true
			}
		case <-t.C:
			return res, fmt.Errorf("%s: no result after %v (log %s)", c.name, d, c.log)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	select {
	case <-c.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return res, nil
}

// exitText is the child's exit status and the last line of its log.
func exitText(c *child) string {
	b, _ := os.ReadFile(c.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return fmt.Sprintf("%v: %s", c.err, lines[len(lines)-1])
}

// stop ends c: SIGTERM, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	if !c.alive() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stopAll ends every child still running, all at once.
func (p *procs) stopAll() {
	p.mu.Lock()
	cs := make([]*child, 0, len(p.live))
	for c := range p.live {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(3 * time.Second) }()
	}
	wg.Wait()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// baseEnv is the driver's environment without OTEL_*, GATE_* and
// COMPARE_* settings, so that the user's shell cannot change what a row
// measures.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "GATE_") || strings.HasPrefix(kv, "COMPARE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// drain reads and discards r (a /metrics body).
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, r) }

var errStackDown = errors.New("a process of this system exited")
