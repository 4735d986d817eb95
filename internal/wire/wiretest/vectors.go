// Package wiretest loads the gate-rpc golden vectors (testdata/vectors.txt,
// captured from gaterpc 0.2.12) for tests of the wire and codec packages
// and of anything built on them.
//
//	vs := wiretest.Load(t, "../wire/testdata/vectors.txt")
//	body := vs.Get(t, "REP_EXC_BODY")
//	for _, m := range vs.Messages() { ... }
//
// The file format is one item per line, "NAME HEX", where HEX is lowercase
// hex and "-" stands for a zero-length value; lines starting with '#' are
// comments. Captured multipart messages are groups of lines named
// LIVE_<SEQ>_M<nn>_<LEG>_F<i> (frame i of message nn of a sequence) or
// <PREFIX>_F<i> / <PREFIX>_FRAME_<i>.
package wiretest

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Vectors is a parsed vectors file. It is read-only after Load and safe
// for concurrent use.
type Vectors struct {
	names  []string // in file order
	values map[string][]byte
	shapes map[string]string // LIVE_<SEQ>_M<nn>_<LEG> -> annotated frame shape
}

// Load reads and parses a vectors file, failing tb on any error. The
// environment variable GATE_VECTORS, when set, replaces path (used to
// check that the tests fail on a mutated copy).
func Load(tb testing.TB, path string) *Vectors {
	tb.Helper()
	if p := os.Getenv("GATE_VECTORS"); p != "" {
		path = p
	}
	vs, err := Parse(path)
	if err != nil {
		tb.Fatalf("wiretest: %v", err)
	}
	return vs
}

// Parse reads and parses a vectors file.
func Parse(path string) (*Vectors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vs := &Vectors{values: make(map[string][]byte), shapes: make(map[string]string)}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	line := 0
	seq := ""
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(s, "# FRAME-SEQUENCE "); ok {
			seq = strings.ToUpper(strings.TrimSpace(name))
			continue
		}
		if m := shapeRE.FindStringSubmatch(s); m != nil && seq != "" {
			vs.shapes["LIVE_"+seq+"_M"+m[1]+"_"+m[2]] = m[3]
			continue
		}
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, h, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want NAME HEX", path, line)
		}
		h = strings.TrimSpace(h)
		var b []byte
		if h != "-" {
			if b, err = hex.DecodeString(h); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %v", path, line, name, err)
			}
		} else {
			b = []byte{}
		}
		if _, dup := vs.values[name]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate name %s", path, line, name)
		}
		vs.names = append(vs.names, name)
		vs.values[name] = b
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vs, nil
}

// Names returns all names in file order.
func (vs *Vectors) Names() []string { return append([]string(nil), vs.names...) }

// Lookup returns the value named name.
func (vs *Vectors) Lookup(name string) ([]byte, bool) {
	b, ok := vs.values[name]
	return b, ok
}

// Get returns the value named name, failing tb if it is missing.
func (vs *Vectors) Get(tb testing.TB, name string) []byte {
	tb.Helper()
	b, ok := vs.values[name]
	if !ok {
		tb.Fatalf("wiretest: no vector %s", name)
	}
	return b
}

// Frames returns the multipart message whose frames are named prefix+"0",
// prefix+"1", ... (prefix is for example "LIVE_PLAIN_CALL_M01_C2B_F" or
// "REQ_ECHO_CLIENT_FRAME_"). It returns nil if there is no frame 0.
func (vs *Vectors) Frames(prefix string) [][]byte {
	var out [][]byte
	for i := 0; ; i++ {
		b, ok := vs.values[prefix+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, b)
	}
}

// Message is one captured multipart message of a FRAME-SEQUENCE.
type Message struct {
	Name   string   // e.g. "LIVE_PLAIN_CALL_M01_C2B"
	Seq    string   // e.g. "PLAIN_CALL"
	Index  int      // nn of M<nn>
	Leg    string   // C2B, B2W, W2B, B2C, RW2B, RC2B, REQ2B, *_RECV
	Frames [][]byte // as logged: ROUTER legs (B2W, B2C, B*_RECV) start with the routing id
}

// shapeRE matches a sequence annotation such as
// "# M01 C2B: ” | 'MDPC01' | 'Gate' | <16B> | 0x90" (with an optional
// "(during ...)" note after the leg).
var shapeRE = regexp.MustCompile(`^# M(\d+) ([A-Z0-9_]+)(?: \([^)]*\))?: (.*)$`)

// Shape returns the annotated frame layout of a captured message, split
// into one description per frame: "”" (empty), "'text'" (literal UTF-8),
// "0xNN" (one byte) or "<NB>" (N bytes of any content).
func (vs *Vectors) Shape(name string) ([]string, bool) {
	s, ok := vs.shapes[name]
	if !ok {
		return nil, false
	}
	parts := strings.Split(s, " | ")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, true
}

// MatchShape reports whether frame matches one Shape element.
func MatchShape(frame []byte, shape string) bool {
	switch {
	case shape == "''":
		return len(frame) == 0
	case len(shape) >= 2 && shape[0] == '\'' && shape[len(shape)-1] == '\'':
		return string(frame) == shape[1:len(shape)-1]
	case strings.HasPrefix(shape, "0x") && len(shape) == 4:
		b, err := hex.DecodeString(shape[2:])
		return err == nil && len(frame) == 1 && frame[0] == b[0]
	case strings.HasPrefix(shape, "<") && strings.HasSuffix(shape, "B>"):
		n, err := strconv.Atoi(shape[1 : len(shape)-2])
		return err == nil && len(frame) == n
	}
	return false
}

var liveRE = regexp.MustCompile(`^LIVE_(.+)_M(\d+)_([A-Z0-9_]+)_F(\d+)$`)

// Messages returns every captured LIVE_* message, in file order.
func (vs *Vectors) Messages() []Message {
	var out []Message
	seen := map[string]int{}
	for _, n := range vs.names {
		m := liveRE.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		key := strings.TrimSuffix(n, "_F"+m[4])
		if _, ok := seen[key]; ok {
			continue
		}
		idx, _ := strconv.Atoi(m[2])
		seen[key] = len(out)
		out = append(out, Message{Name: key, Seq: m[1], Index: idx, Leg: m[3], Frames: vs.Frames(key + "_F")})
	}
	return out
}

// WithPrefix returns the names starting with prefix, sorted.
func (vs *Vectors) WithPrefix(prefix string) []string {
	var out []string
	for _, n := range vs.names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
