package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	getenv := env(map[string]string{"GATE_LOG_FORMAT": "json", "GATE_HEARTBEAT": "200ms"})
	go func() {
		errc <- run(ctx, []string{"-frontend", "tcp://127.0.0.1:0", "-backend", "tcp://127.0.0.1:*"}, getenv, logs)
	}()
	var frontend string
	deadline := time.Now().Add(testTimeout)
	for frontend == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no listening log line; logs:\n%s", logs.String())
		}
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "broker listening" {
				frontend, _ = rec["frontend"].(string)
				if hb, _ := rec["heartbeat"].(float64); hb != float64(200*time.Millisecond) {
					t.Errorf("heartbeat from env = %v", rec["heartbeat"])
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.HasSuffix(frontend, ":0") {
		t.Fatalf("frontend %q: want the bound port", frontend)
	}
	hctx, hcancel := context.WithTimeout(context.Background(), testTimeout)
	defer hcancel()
	var out bytes.Buffer
	if err := run(hctx, []string{"health", "-frontend", frontend}, env(nil), &out); err != nil {
		t.Fatalf("health = %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after cancel")
	}
}

func TestHealthFailsWithoutBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := run(ctx, []string{"health", "-frontend", "tcp://127.0.0.1:1", "-timeout", "100ms"}, env(nil), io.Discard)
	if err == nil {
		t.Fatal("health without broker succeeded")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(config) bool
		wantErr bool
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.Frontend == "tcp://127.0.0.1:5555" && c.Backend == "tcp://127.0.0.1:5556" && c.Heartbeat == 5*time.Second && c.Liveness == 3
		}, false},
		{"env", nil, map[string]string{"GATE_FRONTEND": "ipc:///tmp/f", "GATE_QUEUE_LIMIT": "7", "GATE_QUEUE_TIMEOUT": "3s", "GATE_MAX_MSG_SIZE": "-1"}, func(c config) bool {
			return c.Frontend == "ipc:///tmp/f" && c.QueueLimit == 7 && c.QueueTimeout == 3*time.Second && c.MaxMsgSize == -1
		}, false},
		{"flag beats env", []string{"-liveness", "5"}, map[string]string{"GATE_LIVENESS": "4"}, func(c config) bool { return c.Liveness == 5 }, false},
		{"bad env", nil, map[string]string{"GATE_HEARTBEAT": "soon"}, nil, true},
		{"bad flag", []string{"-nope"}, nil, nil, true},
		{"extra args", []string{"serve"}, nil, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseConfig err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && !tc.want(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name string
		args []string
	}{
		{"bad log level", []string{"-log-level", "loud"}},
		{"bad log format", []string{"-log-format", "xml"}},
		{"bad option", []string{"-heartbeat", "-1s"}},
		{"bind failure", []string{"-frontend", "bogus://x", "-backend", "tcp://127.0.0.1:0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(ctx, tc.args, env(nil), io.Discard); err == nil || errors.Is(err, context.Canceled) {
				t.Fatalf("run = %v, want an error", err)
			}
		})
	}
}
