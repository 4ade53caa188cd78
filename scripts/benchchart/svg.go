package main

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// Chart geometry in SVG user units.
const (
	chartWidth  = 980
	labelWidth  = 380
	barAreaW    = 480
	barHeight   = 14
	groupGap    = 12
	headerH     = 64
	maxScale    = 3.0 // bars longer than 3x the reference are clipped
	tickSpacing = 0.5
)

// colors per contender; unknown contenders get grey.
var colors = map[string]string{"veth": "#9aa5b1", Candidate: "#2b7bb9", Reference: "#e07b39"}

// writeSVG draws, per metric, one bar per contender, its length the median
// divided by wireguard-go's (or by the largest median when wireguard-go was
// not run), so 1.0 is the reference line and the label says which side of
// it is better.
func writeSVG(w io.Writer, r *Results) error {
	var b strings.Builder
	groupH := len(r.Contenders)*barHeight + groupGap
	height := headerH + len(r.Metrics)*groupH + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", chartWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("wgd vs wireguard-go, medians of %s round(s), %s s per run, %s, commit %s",
		r.Meta["rounds"], r.Meta["time"], r.Meta["date"], r.Meta["commit"])
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="10" y="34">bar length = value / %s value (clipped at %gx); number = median</text>`+"\n", Reference, maxScale)
	legend(&b, r.Contenders)
	x0 := labelWidth
	y := headerH
	for _, m := range r.Metrics {
		metricGroup(&b, m, r.Contenders, x0, y)
		y += groupH
	}
	for t := 0.0; t <= maxScale+1e-9; t += tickSpacing {
		x := float64(x0) + t/maxScale*barAreaW
		stroke := "#ddd"
		if t == 1 {
			stroke = "#333"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x, headerH-4, x, y, stroke)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%gx</text>`+"\n", x, y+14, t)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func legend(b *strings.Builder, contenders []string) {
	x := 10
	for _, c := range contenders {
		fmt.Fprintf(b, `<rect x="%d" y="42" width="12" height="12" fill="%s"/>`, x, color(c))
		fmt.Fprintf(b, `<text x="%d" y="52">%s</text>`+"\n", x+16, html.EscapeString(c))
		x += 30 + 7*len(c)
	}
}

func color(c string) string {
	if col, ok := colors[c]; ok {
		return col
	}
	return "#777"
}

// metricGroup draws the label and the bars of one metric.
func metricGroup(b *strings.Builder, m Metric, contenders []string, x0, y int) {
	dir := "lower is better"
	if m.Higher {
		dir = "higher is better"
	}
	label := fmt.Sprintf("%s (%s, %s)", m.Label, m.Unit, dir)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0-8, y+barHeight, html.EscapeString(label))
	norm := normalizer(m, contenders)
	for i, c := range contenders {
		by := y + i*barHeight
		v, ok := m.Values[c]
		if !ok || v.Median == nil || norm <= 0 {
			text := "n/a"
			if ok {
				text = "failed"
			}
			fmt.Fprintf(b, `<text x="%d" y="%d" fill="#999">%s</text>`+"\n", x0+4, by+barHeight-3, text)
			continue
		}
		scale := min(*v.Median/norm, maxScale)
		width := scale / maxScale * barAreaW
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, x0, by+1, width, barHeight-2, color(c))
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x0)+width+4, by+barHeight-3, format(*v.Median))
	}
}

// normalizer is the reference's median, or the largest median without one.
func normalizer(m Metric, contenders []string) float64 {
	if v, ok := m.Values[Reference]; ok && v.Median != nil && *v.Median > 0 {
		return *v.Median
	}
	var n float64
	for _, c := range contenders {
		if v, ok := m.Values[c]; ok && v.Median != nil {
			n = max(n, *v.Median)
		}
	}
	return n
}
