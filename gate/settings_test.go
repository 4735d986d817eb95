package gate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultSettingsValid(t *testing.T) {
	s := DefaultSettings()
	if err := s.Validate(); err != nil {
		t.Fatalf("DefaultSettings().Validate() = %v", err)
	}
	want := map[string][2]any{
		"Heartbeat":          {s.Heartbeat, 5 * time.Second},
		"Liveness":           {s.Liveness, 3},
		"Timeout":            {s.Timeout, 30 * time.Second},
		"ReplyTimeout":       {s.ReplyTimeout, 60 * time.Second},
		"MessageMax":         {s.MessageMax, 5000},
		"StreamReplyMaxSize": {s.StreamReplyMaxSize, 1024},
		"HugeDataSizeOf":     {s.HugeDataSizeOf, 1000},
		"HugeDataCompress":   {s.HugeDataCompress, "gzip"},
		"HugeDataLevel":      {s.HugeDataCompressLevel, 1},
		"HugeDataMaxSize":    {s.HugeDataMaxSize, int64(256 << 20)},
		"MaxStrLen":          {s.MaxStrLen, 32 << 20},
		"MaxBinLen":          {s.MaxBinLen, 32 << 20},
		"MaxEntries":         {s.MaxEntries, 1048576},
		"DefaultService":     {s.DefaultService, "GateRPC"},
		"InternalService":    {s.InternalService, "Gate"},
		"HWM":                {s.HWM, 3000},
		"WorkerAddr":         {s.WorkerAddr, "ipc:///tmp/gate-rpc/w1"},
		"Secure":             {s.Secure, false},
	}
	for name, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("DefaultSettings().%s = %v, want %v", name, gw[0], gw[1])
		}
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Settings) bool
		wantErr string
	}{
		{name: "empty env gives defaults", env: nil, check: func(s Settings) bool { return s == DefaultSettings() }},
		{name: "duration go syntax", env: map[string]string{"GATE_HEARTBEAT": "250ms"}, check: func(s Settings) bool { return s.Heartbeat == 250*time.Millisecond }},
		{name: "duration bare seconds", env: map[string]string{"GATE_REPLY_TIMEOUT": "1.5"}, check: func(s Settings) bool { return s.ReplyTimeout == 1500*time.Millisecond }},
		{name: "size suffix", env: map[string]string{"GATE_HUGE_DATA_MAX_SIZE": "8MiB"}, check: func(s Settings) bool { return s.HugeDataMaxSize == 8<<20 }},
		{name: "ints and strings", env: map[string]string{"GATE_MESSAGE_MAX": "10", "GATE_DEFAULT_SERVICE": "Svc", "GATE_HUGE_DATA_COMPRESS": "zstd", "GATE_HUGE_DATA_COMPRESS_LEVEL": "3", "GATE_WORKER_ADDR": "tcp://127.0.0.1:1"},
			check: func(s Settings) bool {
				return s.MessageMax == 10 && s.DefaultService == "Svc" && s.HugeDataCompress == "zstd" && s.HugeDataCompressLevel == 3 && s.WorkerAddr == "tcp://127.0.0.1:1"
			}},
		{name: "flow off", env: map[string]string{"GATE_FLOW_WINDOW_BYTES": "off", "GATE_AUTO_HUGE_THRESHOLD": "0", "GATE_HWM": "-1"},
			check: func(s Settings) bool { return s.FlowWindowBytes < 0 && s.AutoHugeThreshold < 0 && s.HWM < 0 }},
		{name: "flow window size", env: map[string]string{"GATE_FLOW_WINDOW_BYTES": "1MiB", "GATE_AUTO_HUGE_THRESHOLD": "64K"},
			check: func(s Settings) bool { return s.FlowWindowBytes == 1<<20 && s.AutoHugeThreshold == 64<<10 }},
		{name: "bad flow window", env: map[string]string{"GATE_FLOW_WINDOW_BYTES": "none"}, wantErr: "GATE_FLOW_WINDOW_BYTES"},
		{name: "secure bool", env: map[string]string{"GATE_SECURE": "true"}, check: func(s Settings) bool { return s.Secure }},
		{name: "bad duration", env: map[string]string{"GATE_HEARTBEAT": "soon"}, wantErr: "GATE_HEARTBEAT"},
		{name: "bad int", env: map[string]string{"GATE_MESSAGE_MAX": "lots"}, wantErr: "GATE_MESSAGE_MAX"},
		{name: "bad bool", env: map[string]string{"GATE_SECURE": "maybe"}, wantErr: "GATE_SECURE"},
		{name: "invalid value", env: map[string]string{"GATE_LIVENESS": "0"}, wantErr: "Liveness 0"},
		{name: "colon in service", env: map[string]string{"GATE_DEFAULT_SERVICE": "a:b"}, wantErr: "must not contain ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SettingsFromEnv(envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SettingsFromEnv(%v) error = %v, want ErrInvalidOption mentioning %q", tt.env, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SettingsFromEnv(%v) = %v", tt.env, err)
			}
			if !tt.check(s) {
				t.Fatalf("SettingsFromEnv(%v) = %+v", tt.env, s)
			}
		})
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Settings)
		want   string
	}{
		{"heartbeat", func(s *Settings) { s.Heartbeat = 0 }, "Heartbeat"},
		{"message max", func(s *Settings) { s.MessageMax = 0 }, "MessageMax"},
		{"chunk size", func(s *Settings) { s.HugeDataSizeOf = 9 }, "HugeDataSizeOf"},
		{"compressor", func(s *Settings) { s.HugeDataCompress = "" }, "HugeDataCompress"},
		{"internal clash", func(s *Settings) { s.DefaultService = "Gate" }, "reserved"},
		{"worker addr", func(s *Settings) { s.WorkerAddr = "localhost" }, "WorkerAddr"},
		{"backoff", func(s *Settings) { s.ReconnectBackoffMax = time.Millisecond }, "ReconnectBackoff"},
		{"flow window", func(s *Settings) { s.FlowWindowBytes = 1 }, "FlowWindowBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.mutate(&s)
			err := s.Validate()
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidOption mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCommonOptionsOrder(t *testing.T) {
	base := DefaultSettings()
	base.Liveness = 7
	var c commonOptions
	for _, o := range []CommonOption{WithHeartbeat(time.Second), WithSettings(base), WithMessageMax(3)} {
		o.applyCommon(&c)
	}
	s, err := c.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.Heartbeat != time.Second || s.Liveness != 7 || s.MessageMax != 3 {
		t.Fatalf("settings() = %+v, want Heartbeat 1s (edit over WithSettings), Liveness 7, MessageMax 3", s)
	}
}

// TestSettingsZeroValue: WithSettings(Settings{}) means all defaults, a
// literal names only what it changes, and a negative value turns a
// feature off instead of taking its default.
func TestSettingsZeroValue(t *testing.T) {
	resolve := func(o ...CommonOption) Settings {
		t.Helper()
		var c commonOptions
		for _, o := range o {
			o.applyCommon(&c)
		}
		s, err := c.settings()
		if err != nil {
			t.Fatalf("settings() = %v", err)
		}
		return s
	}
	if s := resolve(WithSettings(Settings{})); s != DefaultSettings() {
		t.Fatalf("WithSettings(Settings{}) = %+v, want the defaults", s)
	}
	s := resolve(WithSettings(Settings{Heartbeat: time.Second, MessageMax: 7}))
	want := DefaultSettings()
	want.Heartbeat, want.MessageMax = time.Second, 7
	if s != want {
		t.Fatalf("WithSettings(Heartbeat, MessageMax) = %+v, want %+v", s, want)
	}
	s = resolve(WithSettings(Settings{FlowWindowBytes: -1, AutoHugeThreshold: -1, HWM: -1}))
	if s.FlowWindowBytes >= 0 || s.AutoHugeThreshold >= 0 || s.HWM >= 0 || s.Liveness != defaultLiveness {
		t.Fatalf("negative fields = %+v, want off (kept negative) and the rest defaults", s)
	}
	if s := resolve(WithLiveness(0)); s.Liveness != defaultLiveness {
		t.Fatalf("WithLiveness(0): Liveness = %d, want the default %d", s.Liveness, defaultLiveness)
	}
	if err := (Settings{}).Validate(); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("Settings{}.Validate() = %v, want ErrInvalidOption (Validate checks the value as it is)", err)
	}
}
