package main

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"time"
)

// Latency histogram, HDR-like: values (nanoseconds) fall into buckets that
// split every power of two into histSub equal parts, so that a bucket's
// width is at most 1/histSub (3%) of its values, from 1 ns to 2^63 ns, in
// a fixed array. Recording is two shifts and an increment; histograms of
// several goroutines are merged by adding counts.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits) * histSub
)

type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64 // ns
	min, max int64   // ns
}

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)*histSub + int(v>>uint(shift)) - histSub
}

// histLower is the smallest value of bucket i.
func histLower(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	return uint64(i%histSub+histSub) << uint(shift)
}

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i+1 >= histBuckets {
		return math.MaxInt64
	}
	return histLower(i+1) - 1
}

func (h *histogram) record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at quantile q (0..1): the upper bound of the
// bucket holding the rank, clamped to [min, max]; 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := int64(min(histUpper(i), uint64(h.max)))
			return time.Duration(max(v, h.min))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// bar is one row of a coarse view of the histogram.
type bar struct {
	Lo, Hi time.Duration
	Count  uint64
}

// bars regroups the histogram into at most n rows with edges spaced
// geometrically between min and max (log scale, as latency tails want).
// A fine bucket that straddles row edges is shared between the rows in
// proportion to its (log-scale) overlap, so that rows narrower than a few
// fine buckets do not alias into a comb; rounding is done on cumulative
// counts, so the rows add up to the total exactly.
func (h *histogram) bars(n int) []bar {
	if h.n == 0 || n < 1 {
		return nil
	}
	lo, hi := float64(max(h.min, 1)), float64(max(h.max, 1))
	if hi <= lo*1.0001 {
		return []bar{{time.Duration(h.min), time.Duration(h.max), h.n}}
	}
	logLo, span := math.Log(lo), math.Log(hi/lo)
	pos := func(v float64) float64 { // row coordinate 0..n of value v
		return min(max((math.Log(max(v, lo))-logLo)/span*float64(n), 0), float64(n))
	}
	rows := make([]float64, n)
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		a, b := pos(float64(histLower(i))), pos(float64(histUpper(i))+1)
		if b-a < 1e-12 { // entirely at an end
			rows[min(int(a), n-1)] += float64(c)
			continue
		}
		for r := int(a); r < n && float64(r) < b; r++ {
			ov := min(b, float64(r+1)) - max(a, float64(r))
			if ov > 0 {
				rows[r] += float64(c) * ov / (b - a)
			}
		}
	}
	out := make([]bar, n)
	var cum float64
	var prev uint64
	for i := range out {
		out[i].Lo = time.Duration(math.Exp(logLo + span*float64(i)/float64(n)))
		out[i].Hi = time.Duration(math.Exp(logLo + span*float64(i+1)/float64(n)))
		cum += rows[i]
		r := uint64(math.Round(cum))
		if i == n-1 {
			r = h.n
		}
		out[i].Count = r - min(prev, r)
		prev = max(prev, r)
	}
	out[0].Lo, out[n-1].Hi = time.Duration(h.min), time.Duration(h.max)
	return out
}

// writeText prints bars as a text histogram with a proportional bar of ■.
func writeText(w io.Writer, bs []bar, width int) {
	var peak uint64
	for _, b := range bs {
		peak = max(peak, b.Count)
	}
	var total uint64
	for _, b := range bs {
		total += b.Count
	}
	for _, b := range bs {
		n := 0
		if peak > 0 {
			n = int(math.Round(float64(b.Count) / float64(peak) * float64(width)))
		}
		if b.Count > 0 && n == 0 {
			n = 1
		}
		fmt.Fprintf(w, "  %9s - %-9s %9d %5.1f%% %s\n", fmtDur(b.Lo), fmtDur(b.Hi), b.Count,
			100*float64(b.Count)/float64(max(total, 1)), strings.Repeat("■", n))
	}
}

// fmtDur prints d with three significant digits: 812µs, 1.23ms, 15.2s.
func fmtDur(d time.Duration) string {
	f := float64(d)
	unit, div := "ns", 1.0
	switch {
	case f >= 1e9:
		unit, div = "s", 1e9
	case f >= 1e6:
		unit, div = "ms", 1e6
	case f >= 1e3:
		unit, div = "µs", 1e3
	}
	v := f / div
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	}
	return fmt.Sprintf("%.2f%s", v, unit)
}
