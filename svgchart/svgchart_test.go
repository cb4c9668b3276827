package svgchart_test

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/svgchart"
)

type elem struct {
	name  string
	attrs map[string]string
	text  string
}

// parse checks the SVG is well-formed XML and lists its elements.
func parse(t *testing.T, svg string) []elem {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	var out []elem
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			e := elem{name: x.Name.Local, attrs: map[string]string{}}
			for _, a := range x.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
		case xml.CharData:
			if len(out) > 0 {
				out[len(out)-1].text += string(x)
			}
		}
	}
}

func num(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBarsHeightsAreProportional(t *testing.T) {
	svg := string(svgchart.Bars(svgchart.Chart{Title: "会话量", Labels: []string{"12-01", "12-02", "12-03"},
		Series: []svgchart.Series{{Name: "人工", Values: []float64{10, 20, 5}}, {Name: "机器人", Values: []float64{40, 0, 15}}}}))
	var bars []elem
	for _, e := range parse(t, svg) {
		if e.name == "rect" && e.attrs["height"] != "10" { // legend swatches are 10×10
			bars = append(bars, e)
		}
	}
	if len(bars) != 6 {
		t.Fatalf("%d bars", len(bars))
	}
	h := func(i int) float64 { return num(t, bars[i].attrs["height"]) }
	// Order: label by label, series by series: 10, 40, 20, 0, 5, 15.
	if r := h(1) / h(0); r < 3.9 || r > 4.1 {
		t.Fatalf("40 vs 10 drawn %v× as tall", r)
	}
	if h(3) != 0 || h(2) != 2*h(0) {
		t.Fatalf("heights %v %v %v", h(0), h(2), h(3))
	}
	if !strings.Contains(svg, "<title>12-02 人工：20</title>") {
		t.Fatalf("tooltip missing:\n%s", svg)
	}
}

func TestStackedAndLinesAndEscaping(t *testing.T) {
	svg := string(svgchart.Bars(svgchart.Chart{Labels: []string{"<script>x</script>"}, Stacked: true,
		Series: []svgchart.Series{{Name: "a&b", Values: []float64{1}}, {Name: "c", Values: []float64{3}}}}))
	parse(t, svg)
	if strings.Contains(svg, "<script>") || !strings.Contains(svg, "a&amp;b") {
		t.Fatalf("not escaped:\n%s", svg)
	}
	lines := string(svgchart.Lines(svgchart.Chart{Title: "无答案率", Labels: []string{"1", "2", "3", "4"}, Format: svgchart.Percent,
		Series: []svgchart.Series{{Name: "无答案率", Values: []float64{0.1, 0.5, 0.25, 0}}}}))
	els := parse(t, lines)
	circles := 0
	for _, e := range els {
		if e.name == "circle" {
			circles++
		}
	}
	if circles != 4 || !strings.Contains(lines, "50%") {
		t.Fatalf("%d points\n%s", circles, lines)
	}
	empty := string(svgchart.Lines(svgchart.Chart{Title: "空"}))
	parse(t, empty)
	if !strings.Contains(empty, "暂无数据") {
		t.Fatal(empty)
	}
}

// A stacked bar's parts sit on each other and the axis fits their sum.
func TestStackedBarFitsTheSum(t *testing.T) {
	svg := string(svgchart.Bars(svgchart.Chart{Labels: []string{"x"}, Stacked: true,
		Series: []svgchart.Series{{Name: "a", Values: []float64{3}}, {Name: "b", Values: []float64{3}}}}))
	var bars []elem
	top := 0.0
	for _, e := range parse(t, svg) {
		switch {
		case e.name == "rect" && e.attrs["height"] != "10":
			bars = append(bars, e)
		case e.name == "text" && e.attrs["text-anchor"] == "end":
			top = max(top, num(t, e.text)) // y tick labels
		}
	}
	if len(bars) != 2 || top != 10 {
		t.Fatalf("%d bars, top tick %v (want 2 bars up to 10)", len(bars), top)
	}
	lowY, lowH := num(t, bars[0].attrs["y"]), num(t, bars[0].attrs["height"])
	highY, highH := num(t, bars[1].attrs["y"]), num(t, bars[1].attrs["height"])
	if lowH != highH || math.Abs(highY+highH-lowY) > 0.15 {
		t.Fatalf("not stacked: low y=%v h=%v, high y=%v h=%v", lowY, lowH, highY, highH)
	}
}
