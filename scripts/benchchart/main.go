// Command benchchart turns the raw output of scripts/bench.sh (iperf3 JSON,
// ping output, /proc samples) into the medians table on stdout, a JSON file
// and an SVG chart. With -in it redraws table and chart from an earlier
// JSON file instead. Standard library only, so that the benchmark needs
// nothing beyond Go, iproute2, iperf3 and ping.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// ErrUsage means neither -raw nor -in was given.
var ErrUsage = errors.New("usage: benchchart (-raw DIR | -in FILE) [-json FILE] [-svg FILE]")

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "benchchart:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer, log *slog.Logger) error {
	fl := flag.NewFlagSet("benchchart", flag.ContinueOnError)
	raw := fl.String("raw", "", "raw results directory written by bench.sh")
	in := fl.String("in", "", "results JSON to redraw instead of -raw")
	out := fl.String("json", "", "write the results JSON here")
	svg := fl.String("svg", "", "write the SVG chart here")
	bars := fl.Bool("bars", false, "also print the chart as text bars")
	if err := fl.Parse(args); err != nil {
		return err
	}
	res, err := load(*raw, *in, log)
	if err != nil {
		return err
	}
	if err := writeTable(stdout, res); err != nil {
		return err
	}
	if *bars {
		fmt.Fprintln(stdout)
		if err := writeBars(stdout, res); err != nil {
			return err
		}
	}
	if *out != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "results:", *out)
	}
	if *svg != "" {
		if err := writeFileWith(*svg, res, writeSVG); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "chart:", *svg)
	}
	return nil
}

func load(raw, in string, log *slog.Logger) (*Results, error) {
	switch {
	case raw != "":
		return summarize(raw, log)
	case in != "":
		data, err := os.ReadFile(in)
		if err != nil {
			return nil, err
		}
		var r Results
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", in, err)
		}
		return &r, nil
	default:
		return nil, ErrUsage
	}
}

func writeFileWith(path string, r *Results, draw func(io.Writer, *Results) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := draw(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
