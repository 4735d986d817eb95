package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

func TestMain(m *testing.M) {
	if gate.RunChildIfRequested() {
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestRunServesDemo(t *testing.T) {
	const hb = 500 * time.Millisecond
	h := gatetest.StartBrokerOn(t, gatetest.IPC, broker.WithHeartbeat(hb))
	env := map[string]string{"GATE_HEARTBEAT": "500ms", "GATE_SERVICE": "demo"}
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-broker", h.Backend, "-workers", "2", "-procs", "1"}, func(k string) string { return env[k] }, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	})

	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gate.NewClient(h.Frontend, gate.WithZMQContext(zctx), gate.WithHeartbeat(hb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		zctx.SetRetryAfterEINTR(false)
		zctx.Term()
	})
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	for {
		if _, err := c.Call(cctx, "demo.echo", 1); err == nil {
			break
		} else if cctx.Err() != nil {
			t.Fatalf("demo never became callable: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := c.Call(cctx, "demo.cpu", 1000); err != nil || len(got.(string)) != 64 {
		t.Fatalf("cpu(1000) = %v, %v", got, err)
	}
	if got, err := c.Call(cctx, "demo.blob", 100000); err != nil || len(got.([]byte)) != 100000 {
		t.Fatalf("blob(100000) = %v bytes, %v", len(got.([]byte)), err)
	}
	var ge *gate.Error
	if _, err := c.Call(cctx, "demo.fail", "boom!"); !errors.As(err, &ge) || ge.Message != "ValueError('boom!')" {
		t.Fatalf("fail = %v", err)
	}
	s, err := c.Stream(cctx, "demo.count", 5)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("count(5) gave %d items", n)
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad flag", []string{"-nope"}, nil, "flag provided but not defined"},
		{"bad env", nil, map[string]string{"GATE_WORKERS": "many"}, "GATE_WORKERS"},
		{"bad settings", nil, map[string]string{"GATE_HEARTBEAT": "x"}, "GATE_HEARTBEAT"},
		{"zero workers", []string{"-workers", "0"}, nil, "-workers 0"},
		{"colon service", []string{"-service", "a:b", "-procs", "0"}, nil, "must not contain ':'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tt.want) {
				t.Fatalf("run(%v, %v) = %v, want error mentioning %q", tt.args, tt.env, err, tt.want)
			}
		})
	}
}
