package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// writeTable prints one row per metric: each contender's median, the ratio
// wgd:wireguard-go and whether the goal is met.
func writeTable(w io.Writer, r *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "metric\tunit\t")
	for _, c := range r.Contenders {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprint(tw, "wgd:wg-go\tgoal\tmet?\t\n")
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%s\t", m.Label, m.Unit)
		for _, c := range r.Contenders {
			v, ok := m.Values[c]
			switch {
			case !ok:
				fmt.Fprint(tw, "-\t")
			case v.Median == nil:
				fmt.Fprint(tw, "failed\t")
			default:
				fmt.Fprintf(tw, "%s\t", format(*v.Median))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", ratioText(m.Ratio), goalText(m.Goal), metText(m.Met))
	}
	return tw.Flush()
}

// format keeps three significant digits, enough for run-to-run noise.
func format(x float64) string {
	return strconv.FormatFloat(x, 'g', 3, 64)
}

func ratioText(r *float64) string {
	if r == nil {
		return "-"
	}
	return format(*r) + "x"
}

func goalText(g *Goal) string {
	if g == nil {
		return ""
	}
	return g.Text
}

func metText(m *bool) string {
	switch {
	case m == nil:
		return ""
	case *m:
		return "yes"
	default:
		return "NO"
	}
}
