package main

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"time"
	"unicode"
)

// The latency histogram as a PNG, drawn with the standard library only:
// bars on a logarithmic latency axis, p50/p90/p99 markers, axes with tick
// labels and a title, in a 3×5 pixel font (with lower case) scaled up.

var (
	pngBG     = color.RGBA{0xff, 0xff, 0xff, 0xff}
	pngInk    = color.RGBA{0x33, 0x33, 0x33, 0xff}
	pngGrid   = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	pngBar    = color.RGBA{0x3b, 0x7d, 0xd8, 0xff}
	pngMarker = [...]color.RGBA{{0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x99, 0x00, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x94, 0x67, 0xbd, 0xff}}
)

const (
	pngW, pngH         = 900, 440
	pngLeft, pngRight  = 80, 20
	pngTop, pngBottom  = 60, 60
	pngScale           = 2 // font pixel size
	pngGlyphW, pngGlyH = 3, 5
)

// writePNG renders r's histogram (rows from h) to w.
func writePNG(w io.Writer, title string, h *histogram, marks []pngMark) error {
	img := image.NewRGBA(image.Rect(0, 0, pngW, pngH))
	fill(img, img.Bounds(), pngBG)
	x0, y0 := pngLeft, pngH-pngBottom // origin
	pw, ph := pngW-pngLeft-pngRight, pngH-pngTop-pngBottom

	bs := h.bars(60)
	var peak uint64
	for _, b := range bs {
		peak = max(peak, b.Count)
	}
	peak = niceCeil(peak)
	// Horizontal grid and count labels.
	for i := 0; i <= 4; i++ {
		y := y0 - ph*i/4
		fill(img, image.Rect(x0, y, x0+pw, y+1), pngGrid)
		label := strconv.FormatUint(peak*uint64(i)/4, 10)
		drawText(img, x0-8-textWidth(label), y-pngGlyH*pngScale/2, label, pngInk)
	}
	// Bars, on a log axis from the first row's low edge to the last's high.
	lo, hi := 1.0, 2.0
	if len(bs) > 0 {
		lo, hi = float64(max(bs[0].Lo, 1)), float64(max(bs[len(bs)-1].Hi, 1))
		if hi <= lo {
			hi = lo * 2
		}
	}
	xOf := func(d time.Duration) int {
		f := math.Log(max(float64(d), lo)/lo) / math.Log(hi/lo)
		return x0 + int(math.Round(min(f, 1)*float64(pw)))
	}
	for _, b := range bs {
		if b.Count == 0 {
			continue
		}
		xa, xb := xOf(b.Lo), xOf(b.Hi)
		if xb-xa > 2 {
			xa++ // a gap between bars
		}
		xb = max(xb, xa+1)
		bh := int(math.Round(float64(b.Count) / float64(peak) * float64(ph)))
		fill(img, image.Rect(xa, y0-max(bh, 1), xb, y0), pngBar)
	}
	// Quantile markers with their labels above the plot.
	lx := x0
	for i, m := range marks {
		c := pngMarker[i%len(pngMarker)]
		x := xOf(m.At)
		for y := pngTop; y < y0; y += 6 {
			fill(img, image.Rect(x, y, x+2, min(y+3, y0)), c)
		}
		label := m.Name + " " + fmtDur(m.At)
		fill(img, image.Rect(lx, pngTop-22, lx+10, pngTop-12), c)
		drawText(img, lx+14, pngTop-22, label, pngInk)
		lx += 14 + textWidth(label) + 24
	}
	// Axes and latency ticks (decades and their 2× and 5×).
	fill(img, image.Rect(x0, pngTop, x0+1, y0+1), pngInk)
	fill(img, image.Rect(x0, y0, x0+pw+1, y0+1), pngInk)
	lastLabel := -1000
	for dec := math.Pow(10, math.Floor(math.Log10(lo))); dec <= hi; dec *= 10 {
		for _, k := range []float64{1, 2, 5} {
			v := dec * k
			if v < lo || v > hi {
				continue
			}
			x := xOf(time.Duration(v))
			fill(img, image.Rect(x, y0, x+1, y0+6), pngInk)
			label := fmtDur(time.Duration(v))
			if x-textWidth(label)/2 > lastLabel+12 {
				drawText(img, x-textWidth(label)/2, y0+12, label, pngInk)
				lastLabel = x + textWidth(label)/2
			}
		}
	}
	axis := "latency (log scale)"
	drawText(img, x0+pw/2-textWidth(axis)/2, y0+34, axis, pngInk)
	drawText(img, 10, 12, title, pngInk)
	drawText(img, 10, pngTop-22, "calls", pngInk)
	return png.Encode(w, img)
}

// pngMark is a vertical marker line (a quantile).
type pngMark struct {
	Name string
	At   time.Duration
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten.
func niceCeil(n uint64) uint64 {
	if n == 0 {
		return 1
	}
	p := uint64(1)
	for p*10 <= n {
		p *= 10
	}
	for _, k := range []uint64{1, 2, 5, 10} {
		if k*p >= n {
			return k * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func textWidth(s string) int {
	return len([]rune(s)) * (pngGlyphW + 1) * pngScale
}

// drawText draws s with its top-left corner at x, y; descenders (g, p,
// q, y, j, µ) go one font pixel below the line. A rune without a glyph
// is drawn as its upper-case glyph, else left blank.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g, ok := font3x5[r]
		if !ok {
			g, ok = font3x5[unicode.ToUpper(r)]
		}
		if ok {
			for row, line := range g {
				for col, px := range line {
					if px == '#' {
						fill(img, image.Rect(x+col*pngScale, y+row*pngScale, x+(col+1)*pngScale, y+(row+1)*pngScale), c)
					}
				}
			}
		}
		x += (pngGlyphW + 1) * pngScale
	}
}

// font3x5 is a 3×5 pixel font (capitals and digits on rows 0–4,
// lower case with a 4-row x-height and a descender row 5), so that units
// read as written: "2.06ms", "812µs".
var font3x5 = map[rune][]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", ".#.", ".#."},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'A': {".#.", "#.#", "###", "#.#", "#.#"}, 'B': {"##.", "#.#", "##.", "#.#", "##."},
	'C': {".##", "#..", "#..", "#..", ".##"}, 'D': {"##.", "#.#", "#.#", "#.#", "##."},
	'E': {"###", "#..", "##.", "#..", "###"}, 'F': {"###", "#..", "##.", "#..", "#.."},
	'G': {".##", "#..", "#.#", "#.#", ".##"}, 'H': {"#.#", "#.#", "###", "#.#", "#.#"},
	'I': {"###", ".#.", ".#.", ".#.", "###"}, 'J': {"..#", "..#", "..#", "#.#", ".#."},
	'K': {"#.#", "#.#", "##.", "#.#", "#.#"}, 'L': {"#..", "#..", "#..", "#..", "###"},
	'M': {"#.#", "###", "###", "#.#", "#.#"}, 'N': {"##.", "#.#", "#.#", "#.#", "#.#"},
	'O': {".#.", "#.#", "#.#", "#.#", ".#."}, 'P': {"##.", "#.#", "##.", "#..", "#.."},
	'Q': {".#.", "#.#", "#.#", "##.", ".##"}, 'R': {"##.", "#.#", "##.", "#.#", "#.#"},
	'S': {".##", "#..", ".#.", "..#", "##."}, 'T': {"###", ".#.", ".#.", ".#.", ".#."},
	'U': {"#.#", "#.#", "#.#", "#.#", "###"},
	'V': {"#.#", "#.#", "#.#", "#.#", ".#."}, 'W': {"#.#", "#.#", "###", "###", "#.#"},
	'X': {"#.#", "#.#", ".#.", "#.#", "#.#"}, 'Y': {"#.#", "#.#", ".#.", ".#.", ".#."},
	'Z': {"###", "..#", ".#.", "#..", "###"}, '.': {"...", "...", "...", "...", ".#."},
	',': {"...", "...", "...", ".#.", "#.."}, ':': {"...", ".#.", "...", ".#.", "..."},
	'/': {"..#", "..#", ".#.", "#..", "#.."}, '-': {"...", "...", "###", "...", "..."},
	'(': {".#.", "#..", "#..", "#..", ".#."}, ')': {".#.", "..#", "..#", "..#", ".#."},
	'%': {"#.#", "..#", ".#.", "#..", "#.#"}, '=': {"...", "###", "...", "###", "..."},
	'_': {"...", "...", "...", "...", "###"}, '+': {"...", ".#.", "###", ".#.", "..."},
	'a': {"...", "##.", ".##", "#.#", "###"}, 'b': {"#..", "##.", "#.#", "#.#", "##."},
	'c': {"...", ".##", "#..", "#..", ".##"}, 'd': {"..#", ".##", "#.#", "#.#", ".##"},
	'e': {"...", ".#.", "###", "#..", ".##"}, 'f': {"..#", ".#.", "###", ".#.", ".#."},
	'g': {"...", ".##", "#.#", "#.#", ".##", "##."}, 'h': {"#..", "##.", "#.#", "#.#", "#.#"},
	'i': {".#.", "...", "##.", ".#.", "###"}, 'j': {"..#", "...", "..#", "..#", "#.#", ".#."},
	'k': {"#..", "#.#", "##.", "##.", "#.#"}, 'l': {"##.", ".#.", ".#.", ".#.", "###"},
	'm': {"...", "###", "###", "#.#", "#.#"}, 'n': {"...", "##.", "#.#", "#.#", "#.#"},
	'o': {"...", ".#.", "#.#", "#.#", ".#."}, 'p': {"...", "##.", "#.#", "#.#", "##.", "#.."},
	'q': {"...", ".##", "#.#", "#.#", ".##", "..#"}, 'r': {"...", ".##", "#..", "#..", "#.."},
	's': {"...", ".##", "##.", "..#", "##."}, 't': {".#.", "###", ".#.", ".#.", "..#"},
	'u': {"...", "#.#", "#.#", "#.#", ".##"}, 'v': {"...", "#.#", "#.#", "#.#", ".#."},
	'w': {"...", "#.#", "#.#", "###", "#.#"}, 'x': {"...", "#.#", ".#.", ".#.", "#.#"},
	'y': {"...", "#.#", "#.#", "#.#", ".##", "##."}, 'z': {"...", "###", "..#", ".#.", "###"},
	'µ': {"...", "#.#", "#.#", "#.#", "###", "#.."}, '×': {"...", "#.#", ".#.", "#.#", "..."},
}
