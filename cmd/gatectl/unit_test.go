package main

import (
	"bytes"
	"encoding/json"
	"image"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArg(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want any
	}{
		{"hello", "hello"},
		{"42", int64(42)},
		{"-7", int64(-7)},
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"2.5", 2.5},
		{"1e3", 1000.0},
		{"true", true},
		{"null", nil},
		{`"42"`, "42"},
		{"[1, \"a\"]", []any{int64(1), "a"}},
		{`{"a": {"b": 1}}`, map[string]any{"a": map[string]any{"b": int64(1)}}},
		{`{"$bytes": "AAE="}`, []byte{0, 1}},
		{`{"$bytes": "AAE=", "x": 1}`, map[string]any{"$bytes": "AAE=", "x": int64(1)}},
		{"12abc", "12abc"},
		{"", ""},
		{"{not json", "{not json"},
	} {
		got, err := parseArg(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArg(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseArg(`{"$bytes": "!!"}`); err == nil {
		t.Error(`parseArg({"$bytes": "!!"}): want a base64 error`)
	}
}

func TestMarshal(t *testing.T) {
	v := map[string]any{
		"b":    []byte("hi"),
		"m":    map[string]any{"1": "one", "k": []any{math.NaN(), math.Inf(-1)}},
		"t":    time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"html": "<a&b>",
	}
	got, err := marshal(v, true)
	want := `{"b":{"$bytes":"aGk="},"html":"<a&b>","m":{"1":"one","k":["NaN","-Inf"]},"t":"2024-01-02T03:04:05Z"}`
	if err != nil || string(got) != want {
		t.Fatalf("marshal = %s, %v\nwant %s", got, err, want)
	}
	if got, _ := marshal([]any{int64(1)}, false); !bytes.Contains(got, []byte("\n  1\n")) {
		t.Errorf("marshal indented = %q", got)
	}
	var round any
	if err := json.Unmarshal(got, &round); err != nil {
		t.Fatal(err)
	}
}

func TestHistogramIndex(t *testing.T) {
	for v := uint64(0); v < 1<<16; v++ {
		i := histIndex(v)
		if v < histLower(i) || v > histUpper(i) {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, histLower(i), histUpper(i))
		}
	}
	for _, v := range []uint64{1 << 40, 1<<62 + 12345, math.MaxInt64} {
		i := histIndex(v)
		if i >= histBuckets || v < histLower(i) || v > histUpper(i) {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, histLower(i), histUpper(i))
		}
		if w := histUpper(i) - histLower(i); float64(w)/float64(histLower(i)) > 1.0/histSub {
			t.Fatalf("bucket %d too wide: %d", i, w)
		}
	}
}

// TestHistogramQuantiles compares quantiles with a sorted-slice oracle:
// within one bucket (3%) above the exact value.
func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h, a, b histogram
	var all []time.Duration
	for i := range 20000 {
		d := time.Duration(math.Exp(r.NormFloat64()*0.8) * float64(time.Millisecond))
		all = append(all, d)
		h.record(d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a != h {
		t.Fatal("merging two halves differs from recording all")
	}
	slices.Sort(all)
	for _, q := range []float64{0, .5, .9, .99, .999, 1} {
		exact := all[max(int(math.Ceil(q*float64(len(all))))-1, 0)]
		got := h.quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/histSub {
			t.Errorf("quantile(%v) = %v, exact %v", q, got, exact)
		}
	}
	if h.quantile(1) != all[len(all)-1] || time.Duration(h.min) != all[0] {
		t.Errorf("max/min = %v/%v, want %v/%v", h.quantile(1), time.Duration(h.min), all[len(all)-1], all[0])
	}
	var n uint64
	for _, b := range h.bars(16) {
		n += b.Count
	}
	if n != h.n {
		t.Errorf("bars hold %d values, want %d", n, h.n)
	}
	var sb strings.Builder
	writeText(&sb, h.bars(8), 20)
	if lines := strings.Count(sb.String(), "\n"); lines != 8 {
		t.Errorf("writeText printed %d lines, want 8:\n%s", lines, sb.String())
	}
	var empty histogram
	if empty.quantile(.5) != 0 || empty.bars(4) != nil {
		t.Error("empty histogram: want zero quantiles and no bars")
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		500: "500ns", 1500: "1.50µs", 812 * time.Microsecond: "812µs", 1234 * time.Microsecond: "1.23ms",
		15200 * time.Millisecond: "15.2s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestPNGFontLowerCase: every rune of a duration label and of the PNG's
// fixed labels has its own glyph, and lower case is drawn as lower case
// ("2.06ms", not "2.06MS").
func TestPNGFontLowerCase(t *testing.T) {
	for _, s := range []string{"0123456789.", "ns µs ms s", "calls latency (log scale) p50 p90 p99 p99.9", "gatectl bench callers bytes calls/s errors"} {
		for _, r := range s {
			if _, ok := font3x5[r]; !ok && r != ' ' {
				t.Errorf("font3x5 has no glyph for %q (in %q)", r, s)
			}
		}
	}
	render := func(s string) *image.RGBA {
		img := image.NewRGBA(image.Rect(0, 0, 100, 20))
		drawText(img, 0, 0, s, pngInk)
		return img
	}
	if bytes.Equal(render("2.06ms").Pix, render("2.06MS").Pix) {
		t.Error(`drawText("2.06ms") draws "2.06MS"`)
	}
	if bytes.Equal(render("ms").Pix, render("ns").Pix) || bytes.Equal(render("µs").Pix, render("us").Pix) {
		t.Error("m, n, µ and u must look different")
	}
}
