package main

import (
	"context"
	"testing"
	"time"
)

// A client's result is its last line before it exits: it must never be
// lost to the pipe being closed at the exit.
func TestChildResult(t *testing.T) {
	p := newProcs(t.TempDir())
	defer p.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 50 {
		c, err := p.start("sh", nil, "/bin/sh", "-c", `echo starting; echo '{"calls":5,"p50_us":12.5}'`)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.result(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if res.Calls != 5 || res.P50us != 12.5 {
			t.Fatalf("run %d: result %+v, want calls 5, p50 12.5", i, res)
		}
	}
}

func TestChildReadyAndStop(t *testing.T) {
	p := newProcs(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.start("sh", nil, "/bin/sh", "-c", `echo "ready url=nats://127.0.0.1:4222 x=1"; exec sleep 60`)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := c.waitReady(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if kv["url"] != "nats://127.0.0.1:4222" || kv["x"] != "1" {
		t.Errorf("ready fields %v", kv)
	}
	p.stopAll()
	if c.alive() {
		t.Error("child still alive after stopAll")
	}
	if _, err := c.result(ctx, time.Second); err == nil {
		t.Error("result of a child that printed none: want an error")
	}
}
