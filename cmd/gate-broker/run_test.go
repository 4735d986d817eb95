package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/cli"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &gatetest.Buffer{}
	errc := make(chan error, 1)
	getenv := env(map[string]string{"GATE_LOG_FORMAT": "json", "GATE_HEARTBEAT": "200ms"})
	go func() {
		errc <- run(ctx, []string{"-frontend", "tcp://127.0.0.1:0", "-backend", "tcp://127.0.0.1:*"}, getenv, io.Discard, logs)
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
	if err := run(hctx, []string{"health", "-frontend", frontend}, env(nil), &out, io.Discard); err != nil {
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
	err := run(ctx, []string{"health", "-frontend", "tcp://127.0.0.1:1", "-timeout", "100ms"}, env(nil), io.Discard, io.Discard)
	if err == nil {
		t.Fatal("health without broker succeeded")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(config) bool
		code int // exit code of the error; 0: no error
		msg  string
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.Frontend == "tcp://127.0.0.1:5555" && c.Backend == "tcp://127.0.0.1:5556" && c.Heartbeat == 5*time.Second &&
				c.Liveness == 3 && c.QueueTimeout == 30*time.Second && c.HWM == 3000 && c.LogFormat == "auto" &&
				c.PeerBufMsgs == broker.DefaultPeerBufferMessages && c.PeerBufBytes == broker.DefaultPeerBufferBytes
		}, 0, ""},
		{"peer buffer", []string{"-peer-buffer-bytes", "-1"}, map[string]string{"GATE_PEER_BUFFER_MSGS": "100000", "GATE_PEER_BUFFER_BYTES": "5"},
			func(c config) bool { return c.PeerBufMsgs == 100000 && c.PeerBufBytes == -1 }, 0, ""},
		{"zero peer buffer msgs", []string{"-peer-buffer-msgs", "0"}, nil, nil, 2, "-peer-buffer-msgs 0"},
		{"bad peer buffer bytes", nil, map[string]string{"GATE_PEER_BUFFER_BYTES": "-2"}, nil, 2, "-peer-buffer-bytes -2"},
		{"env", nil, map[string]string{"GATE_FRONTEND": "ipc:///tmp/f", "GATE_QUEUE_LIMIT": "7", "GATE_TIMEOUT": "3s", "GATE_MAX_MSG_SIZE": "-1", "GATE_HWM": "50", "GATE_HEARTBEAT": "1.5"},
			func(c config) bool {
				return c.Frontend == "ipc:///tmp/f" && c.QueueLimit == 7 && c.QueueTimeout == 3*time.Second && c.MaxMsgSize == -1 && c.HWM == 50 && c.Heartbeat == 1500*time.Millisecond
			}, 0, ""},
		{"flag beats env", []string{"-liveness", "5", "-queue-timeout", "2s"}, map[string]string{"GATE_LIVENESS": "4", "GATE_TIMEOUT": "9s"},
			func(c config) bool { return c.Liveness == 5 && c.QueueTimeout == 2*time.Second }, 0, ""},
		{"bad env", nil, map[string]string{"GATE_HEARTBEAT": "soon"}, nil, 2, "GATE_HEARTBEAT"},
		{"bad env of the broker", nil, map[string]string{"GATE_QUEUE_LIMIT": "many"}, nil, 2, "GATE_QUEUE_LIMIT"},
		{"bad env the broker does not use", nil, map[string]string{"GATE_HUGE_DATA_MAX_SIZE": "big"}, nil, 2, "GATE_HUGE_DATA_MAX_SIZE"},
		{"old queue timeout variable", nil, map[string]string{"GATE_QUEUE_TIMEOUT": "3s"}, nil, 2, "renamed GATE_TIMEOUT"},
		{"bad flag", []string{"-nope"}, nil, nil, 2, ""},
		{"extra args", []string{"serve"}, nil, nil, 2, "unexpected arguments"},
		{"zero heartbeat", []string{"-heartbeat", "0"}, nil, nil, 2, "-heartbeat 0s"},
		{"zero liveness", []string{"-liveness", "0"}, nil, nil, 2, "-liveness 0"},
		{"zero hwm", nil, map[string]string{"GATE_HWM": "0"}, nil, 2, "-hwm -1"},
		{"zero hwm flag", []string{"-hwm", "0"}, nil, nil, 2, "-hwm 0"},
		{"zero max msg size", []string{"-max-msg-size", "0"}, nil, nil, 2, "-max-msg-size 0"},
		{"negative shutdown timeout", []string{"-shutdown-timeout", "-1s"}, nil, nil, 2, "-shutdown-timeout -1s"},
		{"negative native trim", []string{"-native-trim", "-1s"}, nil, nil, 2, "-native-trim -1s"},
		{"bad log format", []string{"-log-format", "xml"}, nil, nil, 2, "xml"},
		{"bad log level", []string{"-log-level", "loud"}, nil, nil, 2, "loud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), io.Discard, io.Discard)
			var msg bytes.Buffer
			if code := cli.ExitCode("gate-broker", err, &msg); code != tc.code || !strings.Contains(msg.String(), tc.msg) {
				t.Fatalf("parseConfig(%q, %v) = %v: exit %d, message %q; want exit %d mentioning %q", tc.args, tc.env, err, code, msg.String(), tc.code, tc.msg)
			}
			if err == nil && !tc.want(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

// TestHelpVersion: -h, -version, `version` and `health -h` answer on
// stdout and exit 0; -h names every subcommand and the log formats.
func TestHelpVersion(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-version"}, {"--version"}, {"version"}, {"health", "-h"}, {"health", "-addr", "x", "-h"}} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, env(nil), &out, &errb)
		if code := cli.ExitCode("gate-broker", err, &errb); code != 0 || out.Len() == 0 || errb.Len() != 0 {
			t.Errorf("gate-broker %q: exit %d, stdout %q, stderr %q; want exit 0, all on stdout", args, code, out.String(), errb.String())
		}
		if args[0] == "-h" {
			for _, want := range []string{"gate-broker ", "gate-broker health", "gate-broker version", "auto (tint text on a terminal, JSON otherwise), text or json", "env GATE_TIMEOUT", "env GATE_HWM", "-peer-buffer-msgs", "-peer-buffer-bytes", "GATE_PEER_BUFFER_MSGS"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("-h lacks %q:\n%s", want, out.String())
				}
			}
		}
		if args[0] != "-h" && args[0] != "health" && (!strings.HasPrefix(out.String(), "gate-broker ") || !strings.Contains(out.String(), " libzmq ")) {
			t.Errorf("gate-broker %q = %q, want the version line", args, out.String())
		}
	}
}

func TestRunErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name string
		args []string
	}{
		{"bind failure", []string{"-frontend", "bogus://x", "-backend", "tcp://127.0.0.1:0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(ctx, tc.args, env(nil), io.Discard, io.Discard); err == nil || errors.Is(err, context.Canceled) {
				t.Fatalf("run = %v, want an error", err)
			}
		})
	}
}

// waitLog waits for a JSON log record with the given msg and returns it.
func waitLog(t *testing.T, logs *gatetest.Buffer, msg string) map[string]any {
	t.Helper()
	return gatetest.WaitLogRecord(t, logs, strconv.Quote(msg), func(rec map[string]any) bool {
		m, _ := rec["msg"].(string)
		return m == msg
	})
}

// TestRunMetrics runs the broker with -metrics-addr, makes one real call
// through it and scrapes /metrics over HTTP for the broker's series; the
// health subcommand probes /healthz.
func TestRunMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &gatetest.Buffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-frontend", "tcp://127.0.0.1:*", "-backend", "tcp://127.0.0.1:*",
			"-metrics-addr", "127.0.0.1:0", "-heartbeat", "200ms"}, env(map[string]string{"GATE_LOG_FORMAT": "json"}), io.Discard, logs)
	}()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-errc
		}
	}()
	addr, _ := waitLog(t, logs, "gate-broker config")["metrics_addr"].(string)
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("metrics_addr %q", addr)
	}
	listening := waitLog(t, logs, "broker listening")
	frontend, _ := listening["frontend"].(string)
	backend, _ := listening["backend"].(string)

	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zctx.Term() }) // after the peers' cleanups
	w := &gatetest.RawWorker{RawPeer: gatetest.Dial(t, zctx, backend, gatetest.NewID("w")), AutoHeartbeat: true}
	w.Ready("Echo", "echo", 1)
	c := &gatetest.RawClient{RawPeer: gatetest.Dial(t, zctx, frontend, gatetest.NewID("c"))}
	body := [][]byte{[]byte("\xa4echo"), []byte("\x91\xa1a"), {0x80}}
	result := []byte("\x82\xa6result\xa1a\xa9exception\xc0")
	var rid []byte
	for i := 0; ; i++ { // until READY has arrived (before, the broker refuses the call)
		if i > 100 {
			t.Fatal("the worker never got the call")
		}
		c.Request("Echo", []byte{'r', byte(i)}, body...)
		if m, err := w.NextMessage(100 * time.Millisecond); err == nil && m.Command == wire.CmdRequest {
			w.Reply(m.Client, m.RequestID, result)
			rid = m.RequestID
			break
		}
	}
	for {
		rep := c.NextReply(gatetest.RecvTimeout)
		if bytes.Equal(rep.RequestID, rid) {
			if len(rep.Body) != 1 || !bytes.Equal(rep.Body[0], result) {
				t.Fatalf("reply %s", gatetest.Dump(rep.Body))
			}
			break
		}
	}

	want := []string{
		`gaterpc_broker_request_duration_seconds_count{outcome="ok",service="Echo"} 1`, // hooks
		`gaterpc_broker_queue_wait_seconds_count{service="Echo"} 1`,                    // hooks
		`gaterpc_broker_dispatch_total{outcome="dispatched"} 1`,                        // Stats collector
		`gaterpc_broker_live_workers 1`,                                                // Stats collector
	}
	// The loop relays the reply before it records the finish: the client
	// can see the reply first, so scrape until the series are there.
	var missing []string
	var text string
	for deadline := time.Now().Add(gatetest.TestTimeout); ; {
		var code int
		code, text = gatetest.MustGet(t, "http://"+addr+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		missing = missing[:0]
		for _, series := range want {
			if !strings.Contains(text, series) {
				missing = append(missing, series)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("/metrics lacks %q:\n%s", missing, text)
	}
	if code, text := gatetest.MustGet(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, text)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"health", "-addr", addr}, env(nil), &out, io.Discard); err != nil || !strings.Contains(out.String(), "/healthz") {
		t.Fatalf("health = %v (%q)", err, out.String())
	}
	if err := run(ctx, []string{"health"}, env(map[string]string{"GATE_METRICS_ADDR": addr}), &out, io.Discard); err != nil {
		t.Fatalf("health with GATE_METRICS_ADDR = %v", err)
	}

	cancel()
	stopped = true
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after cancel")
	}
	if code, err := http.Get("http://" + addr + "/healthz"); err == nil {
		code.Body.Close()
		t.Fatalf("metrics server still up after run returned")
	}
}
