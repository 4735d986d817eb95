package wire

import (
	"errors"
	"testing"
)

func TestWindowRoundTrip(t *testing.T) {
	w := Window{Items: 1024, Bytes: 8 << 20}
	got, err := ParseWindow(w.String())
	if err != nil || got != w {
		t.Fatalf("ParseWindow(%q) = %v, %v", w.String(), got, err)
	}
	for _, bad := range []string{"", "1", "0,4096", "1,1023", "1,", ",4096", "x,4096", "2000000,4096", "1,2147483648", "1,4096,1"} {
		if _, err := ParseWindow(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseWindow(%q) err = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestParseChunk(t *testing.T) {
	if n, err := ParseChunk("262144"); err != nil || n != 262144 {
		t.Fatalf("ParseChunk = %d, %v", n, err)
	}
	for _, bad := range []string{"", "999", "4194305", "-1", "1e6"} {
		if _, err := ParseChunk(bad); err == nil {
			t.Errorf("ParseChunk(%q) accepted", bad)
		}
	}
}

func TestCreditRoundTrip(t *testing.T) {
	for _, c := range []Credit{{}, {1, 1}, {1 << 20, 1 << 40}, {1<<62 - 1, 0}} {
		got, err := ParseCredit(AppendCredit(nil, c))
		if err != nil || got != c {
			t.Fatalf("credit %v: got %v, %v", c, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x01}, {0x80, 0x00, 0x00}, {0x01, 0x01, 0x00}, AppendCredit(nil, Credit{1 << 62, 0})} {
		if _, err := ParseCredit(bad); err == nil {
			t.Errorf("ParseCredit(%x) accepted", bad)
		}
	}
}

func TestWindowMaySend(t *testing.T) {
	w := Window{Items: 2, Bytes: 1000}
	cases := []struct {
		sent, credit Credit
		want         bool
	}{
		{Credit{0, 0}, Credit{}, true},
		{Credit{1, 999}, Credit{}, true},
		{Credit{2, 10}, Credit{}, false},   // item window full
		{Credit{1, 1000}, Credit{}, false}, // byte window full
		{Credit{5, 5000}, Credit{4, 4500}, true},
		{Credit{1, 1 << 20}, Credit{1, 1 << 20}, true}, // nothing outstanding
	}
	for _, c := range cases {
		if got := w.MaySend(c.sent, c.credit); got != c.want {
			t.Errorf("MaySend(sent %v, credit %v) = %v, want %v", c.sent, c.credit, got, c.want)
		}
	}
}

func TestCreditCommand(t *testing.T) {
	m := WorkerMessage{Command: CmdCredit, Client: []byte("c"), RequestID: []byte("r"), Body: [][]byte{AppendCredit(nil, Credit{3, 300})}}
	got, err := ParseWorkerMessage(m.Frames())
	if err != nil {
		t.Fatal(err)
	}
	if got.Command != CmdCredit || string(got.Client) != "c" || string(got.RequestID) != "r" || len(got.Body) != 1 {
		t.Fatalf("parsed %+v", got)
	}
	bad := WorkerMessage{Command: CmdCredit, Client: []byte("c"), RequestID: []byte("r"), Body: [][]byte{{0x80}}}
	if _, err := ParseWorkerMessage(bad.Frames()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad credit payload: err = %v", err)
	}
	none := WorkerMessage{Command: CmdCredit, Client: []byte("c"), RequestID: []byte("r")}
	if _, err := ParseWorkerMessage(none.Frames()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("credit without payload: err = %v", err)
	}
}
