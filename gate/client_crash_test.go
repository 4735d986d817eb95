package gate_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// crashBrokerEnv makes the test binary a broker process ("frontend
// backend") that TestClientE2EBrokerCrash kills.
const crashBrokerEnv = "GATE_TEST_CRASH_BROKER"

func init() {
	spec := os.Getenv(crashBrokerEnv)
	if spec == "" {
		return
	}
	front, back, _ := strings.Cut(spec, " ")
	b, err := broker.New(broker.WithFrontend(front), broker.WithBackend(back),
		broker.WithHeartbeat(clHeartbeat), broker.WithLogger(clQuiet()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), gatetest.TestTimeout)
		defer cancel()
		if _, _, err := b.Addrs(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("ready")
	}()
	err = b.Serve(context.Background())
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

// startCrashBroker runs a broker in a child process on front and back
// and returns it once it has bound.
func startCrashBroker(t *testing.T, front, back string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashBrokerEnv+"="+front+" "+back)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the broker process did not start")
		}
	case <-time.After(gatetest.TestTimeout):
		t.Fatal("the broker process did not bind in time")
	}
	return cmd
}

// TestClientE2EBrokerCrash kills the broker process while a call is held
// by the worker: the call fails with ErrBrokerLost (the broker went away
// without a word), and once a new broker binds the same endpoints the
// client and the worker reconnect and calls succeed.
func TestClientE2EBrokerCrash(t *testing.T) {
	front, back := gatetest.IPC.Endpoints(t)
	cmd := startCrashBroker(t, front, back)

	zctx := gatetest.NewZMQContext(t)
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the worker closes
	svc, err := gate.NewService("Crash", "a call held across a broker crash")
	if err != nil {
		t.Fatal(err)
	}
	if err := gate.Func1(svc, "echo", func(_ context.Context, v any) (any, error) { return v, nil }); err != nil {
		t.Fatal(err)
	}
	if err := gate.Func0(svc, "hold", func(ctx context.Context) (bool, error) {
		held <- struct{}{}
		select {
		case <-ctx.Done():
		case <-release:
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWorker(back, gate.WithZMQContext(zctx), gate.WithHeartbeat(clHeartbeat), gate.WithLogger(clQuiet()))
	if err != nil {
		t.Fatal(err)
	}
	gatetest.ServeWorker(t, w)
	c, err := gate.NewClient(front, gate.WithZMQContext(zctx), gate.WithHeartbeat(100*time.Millisecond),
		gate.WithLiveness(3), gate.WithLogger(clQuiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := clCtx(t)
	if err := c.WaitService(ctx, "Crash"); err != nil {
		t.Fatal(err)
	}

	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "Crash.hold"); errc <- err }()
	select {
	case <-held: // the worker has the request
	case <-ctx.Done():
		t.Fatal("the call never reached the worker")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	select {
	case err := <-errc:
		if !errors.Is(err, gate.ErrBrokerLost) {
			t.Fatalf("in-flight call = %v, want ErrBrokerLost", err)
		}
	case <-ctx.Done():
		t.Fatal("the in-flight call was not failed after the broker died")
	}

	b2, err := broker.New(broker.WithZMQContext(zctx), broker.WithFrontend(front), broker.WithBackend(back),
		broker.WithHeartbeat(clHeartbeat), broker.WithLogger(clQuiet()))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b2.Serve(context.Background()) }()
	t.Cleanup(func() { b2.Close(); <-served })
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := c.Call(callCtx, "Crash.echo", "back")
		cancel()
		if err == nil && v == "back" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no call succeeded after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
