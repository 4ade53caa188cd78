package main

import (
	"fmt"
	"io"
	"strings"
)

// barCells is the width of a text bar at maxScale times the reference.
const barCells = 36

// writeBars prints the chart as text, for places that show no SVG (a
// terminal, a Markdown code block): one bar per contender and metric, its
// length the median over the reference's median, like the SVG.
func writeBars(w io.Writer, r *Results) error {
	unit := float64(barCells) / maxScale
	var b strings.Builder
	fmt.Fprintf(&b, "bar = value / %s value; '|' marks 1.0x, bars clipped at %gx\n", Reference, maxScale)
	for _, m := range r.Metrics {
		dir := "lower is better"
		if m.Higher {
			dir = "higher is better"
		}
		fmt.Fprintf(&b, "\n%s (%s, %s)\n", m.Label, m.Unit, dir)
		norm := normalizer(m, r.Contenders)
		for _, c := range r.Contenders {
			v, ok := m.Values[c]
			if !ok {
				continue
			}
			if v.Median == nil || norm <= 0 {
				fmt.Fprintf(&b, "  %-13s failed\n", c)
				continue
			}
			n := int(min(*v.Median/norm, maxScale)*unit + 0.5)
			bar := []byte(strings.Repeat("#", n) + strings.Repeat(" ", max(barCells-n, 0)))
			if one := int(unit); one < len(bar) && bar[one] == ' ' {
				bar[one] = '|'
			}
			fmt.Fprintf(&b, "  %-13s %s %s\n", c, bar, format(*v.Median))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
