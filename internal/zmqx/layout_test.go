package zmqx

import (
	"os"
	"strings"
	"testing"

	zmq "github.com/pebbe/zmq4"
)

// TestZmq4LayoutPinned fails when the build uses another pebbe/zmq4 than
// the one whose unexported layout rawSocket reads. After an upgrade, check
// zmq.Socket's fields soc and opened and update zmq4Version.
func TestZmq4LayoutPinned(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mod)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/pebbe/zmq4" || len(f) >= 3 && f[0] == "require" && f[1] == "github.com/pebbe/zmq4" {
			if f[0] == "require" {
				f = f[1:]
			}
			if f[1] != zmq4Version {
				t.Fatalf("go.mod requires pebbe/zmq4 %s; internal/zmqx reads the unexported layout of %s: check zmq.Socket's fields and update zmq4Version", f[1], zmq4Version)
			}
			if strings.Contains(line, "// indirect") {
				t.Fatal("go.mod marks pebbe/zmq4 // indirect: it is a direct, pinned dependency")
			}
			return
		}
	}
	t.Fatal("go.mod does not require github.com/pebbe/zmq4")
}

// TestRawSocketIsTheSocket checks that the handle read through unsafe
// offsets is the libzmq socket itself (libzmq reports its type), and that
// a closed socket gives no handle.
func TestRawSocketIsTheSocket(t *testing.T) {
	if !rawOK {
		t.Fatal("zmq.Socket has no fields soc and opened: the layout changed")
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	for _, typ := range []zmq.Type{zmq.PAIR, zmq.DEALER, zmq.ROUTER, zmq.PUB} {
		s, err := zctx.NewSocket(typ)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := rawSocketType(s)
		if !ok || got != typ {
			s.Close()
			t.Fatalf("raw handle of a %v socket reports type %v (ok=%v)", typ, got, ok)
		}
		s.Close()
		if rawSocket(s) != nil {
			t.Fatalf("rawSocket of a closed %v socket is not nil", typ)
		}
	}
}
