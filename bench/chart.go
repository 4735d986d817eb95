package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The chart: calls/s of every workload on a log axis (top), the gate
// telemetry modes (bottom left) and the stream, HugeData and target
// figures as text (bottom right). A paletted PNG keeps the file small.

var (
	colBG   = color.RGBA{0xff, 0xff, 0xff, 0xff}
	colInk  = color.RGBA{0x22, 0x22, 0x22, 0xff}
	colGrid = color.RGBA{0xe2, 0xe2, 0xe2, 0xff}
	colSys  = map[string]color.RGBA{
		"nats":            {0x27, 0xaa, 0x5e, 0xff},
		"zmq_proxy":       {0xe8, 0x8a, 0x1a, 0xff},
		"gate-broker-raw": {0x8e, 0x6c, 0xc9, 0xff},
		"gate":            {0x2f, 0x6f, 0xd0, 0xff},
		"gate-metrics":    {0x5b, 0x9b, 0xe6, 0xff},
		"gate-trace10":    {0x8f, 0xbc, 0xf0, 0xff},
		"gate-trace100":   {0xc2, 0xda, 0xf7, 0xff},
	}
	colGood = color.RGBA{0x1e, 0x8e, 0x3e, 0xff}
	colBad  = color.RGBA{0xc6, 0x28, 0x28, 0xff}
)

const chartW, chartH = 1200, 880

type canvas struct {
	img *image.Paletted
	d   font.Drawer
}

func newCanvas() *canvas {
	pal := color.Palette{colBG, colInk, colGrid, colGood, colBad}
	for _, s := range allSystems {
		pal = append(pal, colSys[s])
	}
	img := image.NewPaletted(image.Rect(0, 0, chartW, chartH), pal)
	cv := &canvas{img: img, d: font.Drawer{Dst: img, Face: basicfont.Face7x13}}
	cv.rect(img.Bounds(), colBG)
	return cv
}

func (cv *canvas) rect(r image.Rectangle, c color.Color) {
	r = r.Intersect(cv.img.Bounds())
	idx := uint8(cv.img.Palette.Index(c))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cv.img.SetColorIndex(x, y, idx)
		}
	}
}

// text draws s with its baseline at y; align -1 left, 0 centre, 1 right.
func (cv *canvas) text(x, y int, s string, c color.Color, align int) {
	w := cv.d.MeasureString(s).Round()
	switch align {
	case 0:
		x -= w / 2
	case 1:
		x -= w
	}
	cv.d.Src = image.NewUniform(c)
	cv.d.Dot = fixed.P(x, y)
	cv.d.DrawString(s)
}

// vtext draws s vertically, one character under the other.
func (cv *canvas) vtext(x, y int, s string, c color.Color) {
	for i, r := range s {
		cv.text(x, y+i*12, string(r), c, 0)
	}
}

func writeChartFile(path string, r *report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = writeChart(f, r)
	return errors.Join(err, f.Close())
}

func writeChart(w io.Writer, r *report) error {
	cv := newCanvas()
	m := r.Machine
	cv.text(16, 22, fmt.Sprintf("make compare  %s  %d cpu (%s)  %d rounds, median  (nats-server %s, libzmq %s)",
		r.Started.Format("2006-01-02 15:04 utc"), m.NProc, m.CPU, r.Config.Rounds, m.NATS, m.Libzmq), colInk, -1)
	cv.ladder(image.Rect(70, 60, chartW-20, 430), r)
	cv.telemetry(image.Rect(70, 530, 620, chartH-50), r)
	cv.summary(image.Rect(660, 520, chartW-20, chartH-10), r)
	return png.Encode(w, cv.img)
}

// ladder: calls/s of the four base systems at every workload, log axis.
func (cv *canvas) ladder(area image.Rectangle, r *report) {
	systems := []string{"nats", "zmq_proxy", "gate-broker-raw", "gate"}
	type group struct {
		label string
		cells []*cell
	}
	var groups []group
	seen := map[[2]int]bool{}
	lo, hi := math.Inf(1), 0.0
	for _, c := range r.Echo {
		k := [2]int{c.Inflight, c.Size}
		if seen[k] {
			continue
		}
		seen[k] = true
		g := group{label: fmt.Sprintf("%d in flight|%s", c.Inflight, sizeName(c.Size))}
		for _, s := range systems {
			x := r.find(s, c.Inflight, c.Size)
			g.cells = append(g.cells, x)
			if x != nil && x.Rate > 0 {
				lo, hi = math.Min(lo, x.Rate), math.Max(hi, x.Rate)
			}
		}
		groups = append(groups, g)
	}
	cv.text(area.Min.X, area.Min.Y-14, "calls/s (log scale), echo through each system; higher is better", colInk, -1)
	if len(groups) == 0 || hi == 0 {
		return
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	yOf := func(v float64) int {
		f := (math.Log10(max(v, math.Pow(10, dlo))) - dlo) / (dhi - dlo)
		return area.Max.Y - int(math.Round(f*float64(area.Dy())))
	}
	for d := dlo; d <= dhi; d++ {
		for _, k := range []float64{1, 2, 5} {
			v := k * math.Pow(10, d)
			if d == dhi && k > 1 {
				continue
			}
			y := yOf(v)
			cv.rect(image.Rect(area.Min.X, y, area.Max.X, y+1), colGrid)
			cv.text(area.Min.X-6, y+4, axisLabel(v), colInk, 1)
		}
	}
	gw := area.Dx() / len(groups)
	bw := max((gw-14)/len(systems), 2)
	for i, g := range groups {
		x0 := area.Min.X + i*gw + 7
		for j, c := range g.cells {
			if c == nil {
				continue
			}
			if c.Rate <= 0 {
				cv.vtext(x0+j*bw+bw/2, area.Max.Y-40, "fail", colBad)
				continue
			}
			xa := x0 + j*bw
			cv.rect(image.Rect(xa, yOf(c.Rate), xa+bw-1, area.Max.Y), colSys[systems[j]])
		}
		top, bottom, _ := cut(g.label)
		cv.text(area.Min.X+i*gw+gw/2, area.Max.Y+16, bottom, colInk, 0)
		cv.text(area.Min.X+i*gw+gw/2, area.Max.Y+30, top, colInk, 0)
	}
	cv.rect(image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y+1), colInk)
	cv.rect(image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), colInk)
	lx := area.Min.X + 470
	for _, s := range systems {
		cv.rect(image.Rect(lx, area.Min.Y-24, lx+12, area.Min.Y-12), colSys[s])
		name := s
		if s == "gate" {
			name = "gate full stack"
		}
		cv.text(lx+16, area.Min.Y-13, name, colInk, -1)
		lx += 24 + cv.d.MeasureString(name).Round()
	}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '|' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// telemetry: gate full stack at the telemetry sizes, one group per
// in-flight count, linear axis.
func (cv *canvas) telemetry(area image.Rectangle, r *report) {
	modes := []string{"gate", "gate-metrics", "gate-trace10", "gate-trace100"}
	names := []string{"off", "metrics+logs", "+trace 10%", "+trace 100%"}
	var keys [][2]int
	peak := 0.0
	for _, c := range r.Echo {
		if c.System != "gate-metrics" && c.System != "gate-trace10" && c.System != "gate-trace100" {
			continue
		}
		k := [2]int{c.Inflight, c.Size}
		if !containsKey(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		for _, m := range modes {
			if c := r.find(m, k[0], k[1]); c != nil {
				peak = max(peak, c.Rate)
			}
		}
	}
	cv.text(area.Min.X, area.Min.Y-26, "gate full stack with telemetry: calls/s", colInk, -1)
	lx := area.Min.X
	for i, m := range modes {
		cv.rect(image.Rect(lx, area.Min.Y-18, lx+12, area.Min.Y-6), colSys[m])
		cv.text(lx+16, area.Min.Y-7, names[i], colInk, -1)
		lx += 28 + cv.d.MeasureString(names[i]).Round()
	}
	if len(keys) == 0 || peak == 0 {
		cv.text(area.Min.X, area.Min.Y+20, "(no telemetry rows in this run)", colInk, -1)
		return
	}
	top := niceCeil(peak)
	yOf := func(v float64) int { return area.Max.Y - int(math.Round(v/top*float64(area.Dy()))) }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		y := yOf(v)
		cv.rect(image.Rect(area.Min.X, y, area.Max.X, y+1), colGrid)
		cv.text(area.Min.X-6, y+4, axisLabel(v), colInk, 1)
	}
	gw := area.Dx() / len(keys)
	bw := max((gw-20)/len(modes), 2)
	for i, k := range keys {
		x0 := area.Min.X + i*gw + 10
		off := r.find("gate", k[0], k[1])
		for j, m := range modes {
			c := r.find(m, k[0], k[1])
			if c == nil || c.Rate <= 0 {
				continue
			}
			xa := x0 + j*bw
			y := yOf(c.Rate)
			cv.rect(image.Rect(xa, y, xa+bw-2, area.Max.Y), colSys[m])
			if off != nil && off.Rate > 0 && m != "gate" {
				cv.text(xa+bw/2, y-4, fmt.Sprintf("%.2f", c.Rate/off.Rate), colInk, 0)
			}
		}
		cv.text(area.Min.X+i*gw+gw/2, area.Max.Y+16, fmt.Sprintf("%d in flight, %s", k[0], sizeName(k[1])), colInk, 0)
	}
	cv.rect(image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y+1), colInk)
	cv.rect(image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), colInk)
	cv.text(area.Min.X, area.Max.Y+32, "numbers on bars: calls/s relative to telemetry off", colInk, -1)
}

func containsKey(ks [][2]int, k [2]int) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, k := range []float64{1, 2, 5, 10} {
		if k*p >= v {
			return k * p
		}
	}
	return 10 * p
}

// summary: the target table as text lines, coloured met / not met.
func (cv *canvas) summary(area image.Rectangle, r *report) {
	y := area.Min.Y
	cv.text(area.Min.X, y, "targets: measured / wanted", colInk, -1)
	y += 22
	for _, t := range r.Targets {
		c := colInk
		if t.Met != nil {
			c = map[bool]color.Color{true: colGood, false: colBad}[*t.Met].(color.RGBA)
		}
		got := fmt.Sprintf("%.2f%s", t.Got, t.Unit)
		switch t.Unit {
		case "failed":
			got = "failed"
		case "items/s":
			got = si(t.Got) + " items/s"
		case "MB/s":
			got = fmt.Sprintf("%.0f mb/s", t.Got)
		case "MiB":
			got = fmt.Sprintf("%.0f mib", t.Got)
		}
		for _, line := range wrap(ascii(fmt.Sprintf("%s: %s (want %s)", t.What, got, t.Want)), 74) {
			if y > area.Max.Y {
				return
			}
			cv.text(area.Min.X, y, line, c, -1)
			y += 14
		}
		y += 3
	}
}

// wrap breaks s into lines of at most n bytes at spaces.
func wrap(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := n
		for i > 0 && s[i] != ' ' {
			i--
		}
		if i == 0 {
			i = n
		}
		out = append(out, s[:i])
		s = "  " + s[i:]
	}
	return append(out, s)
}

// ascii replaces the symbols the bitmap font lacks.
func ascii(s string) string {
	return strings.NewReplacer("≥", ">=", "≤", "<=", "×", "x", "÷", "/", "–", "-", "µ", "u").Replace(s)
}

// axisLabel formats a tick value: 20, 500, 5k, 12.5k, 1M.
func axisLabel(v float64) string {
	unit, div := "", 1.0
	switch {
	case v >= 1e6:
		unit, div = "M", 1e6
	case v >= 1e3:
		unit, div = "k", 1e3
	}
	return strconv.FormatFloat(v/div, 'f', -1, 64) + unit
}
