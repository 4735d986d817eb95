package codec

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"

	"github.com/gaterpc/gate/internal/wire"

	"github.com/gaterpc/gate/internal/wire/wiretest"
)

// updateCorpus rewrites the committed seed corpora under testdata/fuzz:
// go test ./internal/codec -run TestWriteSeedCorpus -update-corpus
var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed corpora from the vectors")

// Caps of the fuzz codec: small, so that the fuzzer reaches them.
const (
	fuzzMaxStr     = 64
	fuzzMaxBin     = 64
	fuzzMaxEntries = 16
	fuzzMaxDepth   = 8
)

func fuzzCodecs(tb testing.TB) (plain, ordered *Codec) {
	opts := []Option{MaxStrLen(fuzzMaxStr), MaxBinLen(fuzzMaxBin), MaxEntries(fuzzMaxEntries), MaxDepth(fuzzMaxDepth)}
	return mustNew(tb, opts...), mustNew(tb, append(opts, OrderedMaps())...)
}

// msgpackSeeds returns every msgpack value of the vectors: group 1/2
// values and the body frames of the captured messages.
func msgpackSeeds(tb testing.TB) map[string][]byte {
	vs := loadVectors(tb)
	out := map[string][]byte{}
	for _, n := range vs.Names() {
		if strings.HasPrefix(n, "V_") || strings.HasPrefix(n, "REQ_ECHO_F") || strings.HasPrefix(n, "REQ_ECHO_A") ||
			strings.HasPrefix(n, "REQ_ECHO_K") || strings.HasPrefix(n, "REQ_NOARGS") || strings.HasPrefix(n, "REP_") && !strings.Contains(n, "FRAME") ||
			strings.HasPrefix(n, "V013_REQUEST_BODY") || strings.HasPrefix(n, "V013_EXC") {
			if Validate(vs.Get(tb, n)) == nil {
				out[n] = vs.Get(tb, n)
			}
		}
	}
	for name, body := range requestBodySeeds(tb) {
		for i, f := range body {
			out[fmt.Sprintf("%s_%d", name, i)] = f
		}
	}
	out["timestamp"] = []byte{0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00}
	out["mixed_keys"] = []byte{0x82, 0xa1, 0x61, 0x01, 0xc4, 0x01, 0x62, 0xc3}
	out["hostile_bin32"] = []byte{0xc6, 0xff, 0xff, 0xff, 0xff}
	out["float32"] = []byte{0xca, 0x3f, 0xc0, 0x00, 0x00}
	return out
}

// requestBodySeeds returns the body frames of the captured requests.
func requestBodySeeds(tb testing.TB) map[string][][]byte {
	vs := loadVectors(tb)
	out := map[string][][]byte{}
	for _, m := range vs.Messages() {
		switch m.Leg {
		case "C2B", "RC2B":
			if r, err := wire.ParseClientRequest(m.Frames); err == nil {
				out[m.Name] = r.Body
			}
		case "W2B":
			if w, err := wire.ParseWorkerMessage(m.Frames); err == nil && w.Command == wire.CmdReply {
				if k, p := wire.ClassifyReply(w.Body); k == wire.ReplySingle || k == wire.ReplyStreamItem || k == wire.ReplyStreamError {
					out[m.Name+"_payload"] = [][]byte{p}
				}
			}
		}
	}
	return out
}

// TestWriteSeedCorpus checks that the committed seed corpus is what the
// vectors give today; with -update-corpus it rewrites it.
func TestWriteSeedCorpus(t *testing.T) {
	write := func(fuzzName, seedName string, data []byte) {
		path := filepath.Join("testdata", "fuzz", fuzzName, "seed-"+strings.ToLower(seedName))
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Errorf("seed %s is missing or stale (%v); regenerate with: go test -run TestWriteSeedCorpus -update-corpus", path, err)
		}
	}
	for name, b := range msgpackSeeds(t) {
		write("FuzzDecode", name, b)
	}
	for name, body := range requestBodySeeds(t) {
		if !strings.HasSuffix(name, "_payload") {
			write("FuzzDecodeRequestBody", name, wiretest.EncodeMultipart(body))
		}
	}
}

// allocatedBytes returns the bytes allocated so far by this process
// (runtime/metrics: cheaper than ReadMemStats, no stop-the-world).
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// checkAlloc runs f and fails t if it allocates more than maxAlloc(n).
// The counter is process-wide and the fuzzing engine allocates too, so an
// excess is re-measured a few times and only a repeatable one fails.
func checkAlloc(t *testing.T, n int, what string, f func()) {
	t.Helper()
	limit := maxAlloc(n)
	best := ^uint64(0)
	for range 5 {
		before := allocatedBytes()
		f()
		best = min(best, allocatedBytes()-before)
		if best <= limit {
			return
		}
	}
	t.Fatalf("%s allocated %d bytes for %d input bytes (limit %d)", what, best, n, limit)
}

// maxAlloc bounds what decoding an input of n bytes may allocate: every
// allocation is bounded by the input (a []any element or map entry per
// input byte), never by a length header.
func maxAlloc(n int) uint64 { return uint64(256*n) + 64<<10 }

func FuzzDecode(f *testing.F) {
	for _, b := range msgpackSeeds(f) {
		f.Add(b)
	}
	plain, ordered := fuzzCodecs(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ordered.Decode(b)
		checkAlloc(t, len(b), fmt.Sprintf("Decode(%x)", b), func() { _, _ = ordered.Decode(b) })
		checkAlloc(t, len(b), fmt.Sprintf("Unmarshal(%x)", b), func() {
			var x any
			_ = plain.Unmarshal(b, &x)
		})
		verr := ordered.Validate(b)
		if (err == nil) != (verr == nil) {
			// Decode additionally rejects nothing that Validate accepts
			// for ordered maps.
			t.Fatalf("Decode err %v, Validate err %v", err, verr)
		}
		// DecodeOwned decodes what Decode does (it may accept more: no
		// str/bin caps) without allocating more than the input.
		ov, oerr := ordered.DecodeOwned(slices.Clone(b))
		checkAlloc(t, len(b), fmt.Sprintf("DecodeOwned(%x)", b), func() { _, _ = ordered.DecodeOwned(slices.Clone(b)) })
		if err == nil {
			// Compared re-encoded: NaN is not DeepEqual to itself.
			want, _ := ordered.Marshal(v)
			got, gerr := ordered.Marshal(ov)
			if oerr != nil || gerr != nil || !bytes.Equal(got, want) {
				t.Fatalf("DecodeOwned(%x) = %#v, %v; Decode = %#v", b, ov, oerr, v)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) {
				t.Fatalf("Decode(%x) error %v wraps no sentinel", b, err)
			}
			return
		}
		// Round trip: the canonical re-encoding is stable and, when b was
		// canonical, equal to b.
		b2, err := ordered.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(Decode(%x)) = %v", b, err)
		}
		v2, err := ordered.Decode(b2)
		if err != nil {
			t.Fatalf("Decode(Marshal(Decode(%x))) = %v (%x)", b, err, b2)
		}
		b3, err := ordered.Marshal(v2)
		if err != nil || !bytes.Equal(b2, b3) {
			t.Fatalf("unstable round trip %x -> %x -> %x (%v)", b, b2, b3, err)
		}
		if len(b2) > len(b) && !bytes.Contains(b, []byte{0xca}) {
			// only float32 widening grows a value
			t.Fatalf("re-encoding grew %x to %x", b, b2)
		}
		// The unordered decoder agrees with the ordered one, except on
		// map keys Go cannot hash or keys that collide once converted to
		// strings, both ErrMalformed.
		if pv, err := plain.Decode(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("plain Decode(%x) = %v, ordered Decode succeeded", b, err)
			}
		} else {
			pb, err := plain.Marshal(pv)
			if err != nil {
				t.Fatalf("Marshal(%#v): %v", pv, err)
			}
			pv2, err := plain.Decode(pb)
			if err != nil {
				t.Fatal(err)
			}
			if pb2, _ := plain.Marshal(pv2); !bytes.Equal(pb, pb2) {
				t.Fatalf("unstable plain round trip %x -> %x -> %x", b, pb, pb2)
			}
		}
		// Unmarshal into any agrees with Decode.
		var x any
		if err := plain.Unmarshal(b, &x); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Unmarshal(%x): %v", b, err)
		}
	})
}

func FuzzDecodeRequestBody(f *testing.F) {
	for _, body := range requestBodySeeds(f) {
		f.Add(wiretest.EncodeMultipart(body))
	}
	c, ordered := fuzzCodecs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		body := wiretest.DecodeMultipart(data)
		fn, args, kwargs, err := c.DecodeRequestBody(body)
		checkAlloc(t, len(data), "DecodeRequestBody", func() { _, _, _, _ = c.DecodeRequestBody(body) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(body) < 1 || len(body) > 3 || len(args) > fuzzMaxEntries || len(kwargs) > fuzzMaxEntries {
			t.Fatalf("accepted %d frames, %d args, %d kwargs", len(body), len(args), len(kwargs))
		}
		// Every part decodes on its own (with ordered maps: a plain Go map
		// cannot take array, map or ext keys, which msgpack allows), and
		// re-encoding the request from its parts gives a body that decodes
		// to the same parts.
		argv := make([]any, len(args))
		for i, a := range args {
			if argv[i], err = ordered.Decode(a); err != nil {
				t.Fatalf("arg %d (%x): %v", i, a, err)
			}
		}
		kw := make(map[string]any, len(kwargs))
		for k, v := range kwargs {
			if strings.HasPrefix(k, "__") {
				t.Fatalf("accepted kwarg %q", k)
			}
			if kw[k], err = ordered.Decode(v); err != nil {
				t.Fatalf("kwarg %q (%x): %v", k, v, err)
			}
		}
		raw := make([]any, len(args))
		for i, a := range args {
			raw[i] = a
		}
		rawKw := make(map[string]any, len(kwargs))
		for k, v := range kwargs {
			rawKw[k] = v
		}
		again, err := c.EncodeRequestBody(fn, raw, rawKw)
		if err != nil {
			t.Fatalf("EncodeRequestBody(%q, ...): %v", fn, err)
		}
		fn2, args2, kwargs2, err := c.DecodeRequestBody(again)
		if err != nil || fn2 != fn || len(args2) != len(args) || len(kwargs2) != len(kwargs) {
			t.Fatalf("re-decoded %q, %d args, %d kwargs, %v", fn2, len(args2), len(kwargs2), err)
		}
		for i := range args {
			if !bytes.Equal(args[i], args2[i]) {
				t.Fatalf("arg %d %x became %x", i, args[i], args2[i])
			}
		}
		for k := range kwargs {
			if !bytes.Equal(kwargs[k], kwargs2[k]) {
				t.Fatalf("kwarg %q %x became %x", k, kwargs[k], kwargs2[k])
			}
		}
		if len(body) == 3 {
			// A canonical 3-frame body (sorted kwargs, minimal headers)
			// re-encodes byte for byte.
			if v, err := c.Decode(body[2]); err == nil {
				if canon, err := c.Marshal(v); err == nil && bytes.Equal(canon, body[2]) && bytes.Equal(again[0], body[0]) && bytes.Equal(again[1], body[1]) {
					if !bytes.Equal(again[2], body[2]) {
						t.Fatalf("kwargs %x re-encoded as %x", body[2], again[2])
					}
				}
			}
		}
	})
}
