package soak

import (
	"strings"
	"testing"
)

// TestGrowth: a process whose RSS or goroutines keep climbing through
// the second half of a run is reported; a flat one (noise included) is
// not.
func TestGrowth(t *testing.T) {
	series := func(rss func(p float64) int64, gor func(p float64) int) *Series {
		s := &Series{Name: "p"}
		for i := 0; i <= 20; i++ {
			p := float64(i) / 20
			s.Samples = append(s.Samples, Sample{Progress: p, RSS: rss(p), Goroutines: gor(p)})
		}
		return s
	}
	flatRSS := func(p float64) int64 { return 30<<20 + int64(p*4)<<20 }
	flatG := func(float64) int { return 15 }
	if got := growth(series(flatRSS, flatG)); len(got) != 0 {
		t.Errorf("flat process reported: %v", got)
	}
	leakRSS := func(p float64) int64 { return 30<<20 + int64(p*200)<<20 }
	if got := growth(series(leakRSS, flatG)); len(got) != 1 || !strings.Contains(got[0], "RSS grew") {
		t.Errorf("RSS leak: %v", got)
	}
	leakG := func(p float64) int { return 15 + int(p*1000) }
	if got := growth(series(flatRSS, leakG)); len(got) != 1 || !strings.Contains(got[0], "goroutines grew") {
		t.Errorf("goroutine leak: %v", got)
	}
	if got := growth(&Series{Name: "empty"}); got != nil {
		t.Errorf("no samples: %v", got)
	}
}
