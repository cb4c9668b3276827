// Package svgchart renders small charts as inline SVG on the server: bar
// charts (grouped or stacked) and line charts, with axes, a legend and a
// native tooltip (<title>) per point — no JavaScript, so report pages stay
// plain html/template. Text is escaped; the output is safe to embed.
package svgchart

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Series is one named row of values, one per label.
type Series struct {
	Name   string
	Values []float64
	// Color is a CSS color; empty picks one from the palette.
	Color string
}

// Chart is what to draw.
type Chart struct {
	Title  string
	Labels []string // the x axis, one per value
	Series []Series
	// Width and Height in px; 640×260 when 0.
	Width, Height int
	// Stacked stacks bars instead of placing them side by side (Bars only).
	Stacked bool
	// Format prints values on the y axis and in tooltips; %g when nil.
	Format func(float64) string
	// Empty is shown when there is nothing to draw; "暂无数据" when "".
	Empty string
}

// Palette is the default series colors (colour-blind friendly).
var Palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"}

const (
	padLeft   = 52
	padRight  = 12
	padTop    = 28
	padBottom = 44
)

type frame struct {
	c          Chart
	w, h       int
	plotW      float64
	plotH      float64
	max        float64
	b          strings.Builder
	formatTick func(float64) string
}

func newFrame(c Chart) *frame {
	f := &frame{c: c, w: c.Width, h: c.Height}
	if f.w <= 0 {
		f.w = 640
	}
	if f.h <= 0 {
		f.h = 260
	}
	f.plotW = float64(f.w - padLeft - padRight)
	f.plotH = float64(f.h - padTop - padBottom)
	f.formatTick = c.Format
	if f.formatTick == nil {
		f.formatTick = func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	}
	fmt.Fprintf(&f.b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		f.w, f.h, f.w, f.h, esc(c.Title))
	fmt.Fprintf(&f.b, `<title>%s</title>`, esc(c.Title))
	if c.Title != "" {
		fmt.Fprintf(&f.b, `<text class="chart-title" x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, padLeft, esc(c.Title))
	}
	return f
}

func esc(s string) string { return template.HTMLEscapeString(s) }

func (f *frame) color(i int) string {
	if c := f.c.Series[i].Color; c != "" {
		return esc(c)
	}
	return Palette[i%len(Palette)]
}

func value(s Series, i int) float64 {
	if i >= len(s.Values) || math.IsNaN(s.Values[i]) || s.Values[i] < 0 {
		return 0
	}
	return s.Values[i]
}

// niceMax rounds v up to 1, 2, 2.5 or 5 × a power of ten, so ticks are
// round numbers.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// scale fits the y axis to the highest value of any label (with stacked,
// the highest sum).
func (f *frame) scale(stacked bool) {
	for i := range f.c.Labels {
		top := 0.0
		for _, s := range f.c.Series {
			if stacked {
				top += value(s, i)
			} else {
				top = math.Max(top, value(s, i))
			}
		}
		f.max = math.Max(f.max, top)
	}
	f.max = niceMax(f.max)
}

func (f *frame) y(v float64) float64 { return float64(padTop) + f.plotH*(1-v/f.max) }

// axes draws the y grid with 5 ticks and the x labels (thinned to fit).
func (f *frame) axes(xAt func(i int) float64) {
	for i := 0; i <= 4; i++ {
		v := f.max * float64(i) / 4
		y := f.y(v)
		fmt.Fprintf(&f.b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padLeft, y, f.w-padRight, y)
		fmt.Fprintf(&f.b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#555">%s</text>`, padLeft-4, y+3, esc(f.formatTick(v)))
	}
	n := len(f.c.Labels)
	step := 1
	if maxLabels := int(f.plotW / 56); maxLabels > 0 && n > maxLabels {
		step = (n + maxLabels - 1) / maxLabels
	}
	for i := 0; i < n; i += step {
		fmt.Fprintf(&f.b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#555">%s</text>`,
			xAt(i), f.h-padBottom+14, esc(f.c.Labels[i]))
	}
	fmt.Fprintf(&f.b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#999"/>`, padLeft, f.y(0), f.w-padRight, f.y(0))
}

// legend writes the series names under the axis.
func (f *frame) legend() {
	x := float64(padLeft)
	for i, s := range f.c.Series {
		fmt.Fprintf(&f.b, `<rect x="%.1f" y="%d" width="10" height="10" fill="%s"/>`, x, f.h-16, f.color(i))
		fmt.Fprintf(&f.b, `<text x="%.1f" y="%d" font-size="11">%s</text>`, x+14, f.h-7, esc(s.Name))
		x += 24 + 12*float64(len([]rune(s.Name)))
	}
}

func (f *frame) empty() bool { return len(f.c.Labels) == 0 || len(f.c.Series) == 0 }

func (f *frame) done() template.HTML {
	f.b.WriteString(`</svg>`)
	return template.HTML(f.b.String()) // every text above went through esc
}

func (f *frame) drawEmpty() template.HTML {
	msg := f.c.Empty
	if msg == "" {
		msg = "暂无数据"
	}
	fmt.Fprintf(&f.b, `<text class="chart-empty" x="%d" y="%d" font-size="12" text-anchor="middle" fill="#888">%s</text>`, f.w/2, f.h/2, esc(msg))
	return f.done()
}

// Bars draws one group of bars per label (or one stacked bar).
func Bars(c Chart) template.HTML {
	f := newFrame(c)
	if f.empty() {
		return f.drawEmpty()
	}
	n := len(c.Labels)
	f.scale(c.Stacked)
	slot := f.plotW / float64(n)
	gap := slot * 0.2
	xAt := func(i int) float64 { return float64(padLeft) + slot*(float64(i)+0.5) }
	f.axes(xAt)
	for i := 0; i < n; i++ {
		x0 := float64(padLeft) + slot*float64(i) + gap/2
		base := 0.0
		barW := slot - gap
		if !c.Stacked {
			barW = (slot - gap) / float64(len(c.Series))
		}
		for si, s := range c.Series {
			v := value(s, i)
			x := x0
			top, bottom := f.y(v), f.y(0)
			if c.Stacked {
				top, bottom = f.y(base+v), f.y(base)
				base += v
			} else {
				x = x0 + barW*float64(si)
			}
			fmt.Fprintf(&f.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s：%s</title></rect>`,
				x, top, math.Max(barW-1, 1), bottom-top, f.color(si), esc(c.Labels[i]), esc(s.Name), esc(f.formatTick(v)))
		}
	}
	f.legend()
	return f.done()
}

// Lines draws one polyline per series, with a point (and tooltip) per
// label.
func Lines(c Chart) template.HTML {
	f := newFrame(c)
	if f.empty() {
		return f.drawEmpty()
	}
	n := len(c.Labels)
	f.scale(false)
	xAt := func(i int) float64 {
		if n == 1 {
			return float64(padLeft) + f.plotW/2
		}
		return float64(padLeft) + f.plotW*float64(i)/float64(n-1)
	}
	f.axes(xAt)
	for si, s := range c.Series {
		pts := make([]string, n)
		for i := 0; i < n; i++ {
			pts[i] = fmt.Sprintf("%.1f,%.1f", xAt(i), f.y(value(s, i)))
		}
		fmt.Fprintf(&f.b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, f.color(si), strings.Join(pts, " "))
		for i := 0; i < n; i++ {
			v := value(s, i)
			fmt.Fprintf(&f.b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s：%s</title></circle>`,
				xAt(i), f.y(v), f.color(si), esc(c.Labels[i]), esc(s.Name), esc(f.formatTick(v)))
		}
	}
	f.legend()
	return f.done()
}

// Percent formats a share (0–1) as "42%".
func Percent(v float64) string { return strconv.FormatFloat(v*100, 'f', 0, 64) + "%" }

// Seconds formats seconds as "45s", "3m" or "1.5h".
func Seconds(v float64) string {
	switch {
	case v < 120:
		return strconv.FormatFloat(v, 'f', 0, 64) + "s"
	case v < 7200:
		return strconv.FormatFloat(v/60, 'f', 0, 64) + "m"
	}
	return strconv.FormatFloat(v/3600, 'f', 1, 64) + "h"
}
