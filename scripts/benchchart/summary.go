package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Reference is the contender every ratio is taken against.
const Reference = "wireguard-go"

// Candidate is the contender the goals are about.
const Candidate = "wgd"

// Goal is a target from issue 8: either on the ratio candidate:reference
// (Ratio true) or on the candidate's own value.
type Goal struct {
	Ratio  bool    `json:"ratio"`
	AtMost bool    `json:"at_most"`
	Target float64 `json:"target"`
	Text   string  `json:"text"`
}

// Value is one metric of one contender: the median over the rounds that
// produced a number, and those numbers.
type Value struct {
	Median *float64  `json:"median"`
	Rounds []float64 `json:"rounds"`
}

// Metric is one row of the table and one group of bars in the chart.
type Metric struct {
	Key    string           `json:"key"`
	Label  string           `json:"label"`
	Unit   string           `json:"unit"`
	Higher bool             `json:"higher_is_better"`
	Values map[string]Value `json:"values"`
	Ratio  *float64         `json:"ratio"`
	Goal   *Goal            `json:"goal,omitempty"`
	Met    *bool            `json:"goal_met,omitempty"`
}

// Results is the JSON file bench.sh writes.
type Results struct {
	Meta       map[string]string `json:"meta"`
	Contenders []string          `json:"contenders"`
	Metrics    []Metric          `json:"metrics"`
}

// extractor turns one round directory of one contender into a number.
type extractor func(dir string) (float64, error)

// metricSpec says how a metric is measured and judged.
type metricSpec struct {
	key, label, unit string
	higher           bool
	extract          extractor
	goal             *Goal
	daemonOnly       bool
}

const bitsPerGbit = 1e9

func specs() []metricSpec {
	return []metricSpec{
		{key: "ping_avg_ms", label: "ping RTT average", unit: "ms", extract: pingStat(mean),
			goal: &Goal{Ratio: true, AtMost: true, Target: 0.5, Text: "<= 0.5x"}},
		{key: "ping_p99_ms", label: "ping RTT p99", unit: "ms", extract: pingStat(p99)},
		{key: "tcp1_gbps", label: "TCP 1 stream A->B", unit: "Gbit/s", higher: true, extract: iperfRate("tcp1"),
			goal: &Goal{Ratio: true, Target: 2.0, Text: ">= 2.0x"}},
		{key: "tcp1r_gbps", label: "TCP 1 stream B->A", unit: "Gbit/s", higher: true, extract: iperfRate("tcp1r")},
		{key: "tcp4_gbps", label: "TCP 4 streams", unit: "Gbit/s", higher: true, extract: iperfRate("tcp4")},
		{key: "udp1g_gbps", label: "UDP 1392 B @ 1 Gbit/s delivered", unit: "Gbit/s", higher: true, extract: iperfRate("udp1g")},
		{key: "udp1g_delivered_pct", label: "UDP 1392 B @ 1 Gbit/s delivered", unit: "%", higher: true,
			extract: iperfDelivered("udp1g"), goal: &Goal{Target: 99, Text: ">= 99%"}},
		{key: "udpmax_gbps", label: "UDP 1392 B unlimited delivered", unit: "Gbit/s", higher: true, extract: iperfRate("udpmax")},
		{key: "udpmax_loss_pct", label: "UDP 1392 B unlimited loss", unit: "%", extract: iperfLoss("udpmax")},
		{key: "tcp1_cpu_s_per_gb", label: "daemon CPU, TCP 1 stream", unit: "CPU-s/GB", extract: cpuPerGB("tcp1"),
			daemonOnly: true, goal: &Goal{Ratio: true, AtMost: true, Target: 0.5, Text: "<= 0.5x"}},
		{key: "tcp4_cpu_s_per_gb", label: "daemon CPU, TCP 4 streams", unit: "CPU-s/GB", extract: cpuPerGB("tcp4"), daemonOnly: true},
		{key: "udpmax_cpu_s_per_gb", label: "daemon CPU, UDP unlimited", unit: "CPU-s/GB", extract: cpuPerGB("udpmax"), daemonOnly: true},
		{key: "rss_tcp_mib", label: "peak RSS per daemon, TCP load", unit: "MiB", extract: rssFile("rss_tcp.txt"),
			daemonOnly: true, goal: &Goal{AtMost: true, Target: 64, Text: "<= 64 MiB"}},
		{key: "rss_all_mib", label: "peak RSS per daemon, all tests", unit: "MiB", extract: rssFile("rss_all.txt"), daemonOnly: true},
	}
}

// summarize reads the raw directory bench.sh filled: meta.txt and
// CONTENDER/rN/ per round.
func summarize(raw string, log *slog.Logger) (*Results, error) {
	metaText, err := os.ReadFile(filepath.Join(raw, "meta.txt"))
	if err != nil {
		return nil, err
	}
	res := &Results{Meta: parseMeta(string(metaText))}
	for _, c := range strings.Split(res.Meta["impls"], ",") {
		if c = strings.TrimSpace(c); c != "" {
			res.Contenders = append(res.Contenders, c)
		}
	}
	rounds := map[string][]string{}
	for _, c := range res.Contenders {
		dirs, err := filepath.Glob(filepath.Join(raw, c, "r*"))
		if err != nil {
			return nil, err
		}
		sort.Strings(dirs)
		rounds[c] = dirs
	}
	for _, s := range specs() {
		res.Metrics = append(res.Metrics, measure(s, res.Contenders, rounds, log))
	}
	return res, nil
}

// measure fills one metric from every round of every contender.
func measure(s metricSpec, contenders []string, rounds map[string][]string, log *slog.Logger) Metric {
	m := Metric{Key: s.key, Label: s.label, Unit: s.unit, Higher: s.higher, Values: map[string]Value{}, Goal: s.goal}
	for _, c := range contenders {
		if s.daemonOnly && c == "veth" {
			continue
		}
		var v Value
		for _, dir := range rounds[c] {
			x, err := s.extract(dir)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					log.Warn("skipping a round", "metric", s.key, "dir", dir, "err", err)
				}
				continue
			}
			v.Rounds = append(v.Rounds, x)
		}
		v.Median = median(v.Rounds)
		m.Values[c] = v
	}
	judge(&m)
	return m
}

// judge computes the ratio candidate:reference and whether the goal is met.
func judge(m *Metric) {
	cand, ref := m.Values[Candidate].Median, m.Values[Reference].Median
	if cand != nil && ref != nil && *ref != 0 {
		r := *cand / *ref
		m.Ratio = &r
	}
	if m.Goal == nil {
		return
	}
	x := cand
	if m.Goal.Ratio {
		x = m.Ratio
	}
	if x == nil {
		return
	}
	met := *x >= m.Goal.Target
	if m.Goal.AtMost {
		met = *x <= m.Goal.Target
	}
	m.Met = &met
}

// median returns nil for no values, so that a failed contender shows as
// missing instead of as zero.
func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	v := s[len(s)/2]
	if len(s)%2 == 0 {
		v = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &v
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// p99 is the nearest-rank 99th percentile; with 50 pings it is the maximum.
func p99(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(0.99 * float64(len(s))))
	return s[max(rank, 1)-1]
}

func pingStat(stat func([]float64) float64) extractor {
	return func(dir string) (float64, error) {
		f, err := os.Open(filepath.Join(dir, "ping.txt"))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		rtts, err := parsePing(f)
		if err != nil {
			return 0, err
		}
		return stat(rtts), nil
	}
}

func readIperf(dir, test string) (iperfTotal, error) {
	data, err := os.ReadFile(filepath.Join(dir, test+".json"))
	if err != nil {
		return iperfTotal{}, err
	}
	return parseIperf(data)
}

func iperfRate(test string) extractor {
	return func(dir string) (float64, error) {
		t, err := readIperf(dir, test)
		return t.BitsPerSec / bitsPerGbit, err
	}
}

func iperfLoss(test string) extractor {
	return func(dir string) (float64, error) {
		t, err := readIperf(dir, test)
		return t.LostPercent, err
	}
}

func iperfDelivered(test string) extractor {
	return func(dir string) (float64, error) {
		t, err := readIperf(dir, test)
		return 100 - t.LostPercent, err
	}
}

// cpuPerGB divides the daemons' CPU-seconds over a run by the gigabytes
// (1e9 bytes) the receiver got.
func cpuPerGB(test string) extractor {
	return func(dir string) (float64, error) {
		t, err := readIperf(dir, test)
		if err != nil {
			return 0, err
		}
		text, err := os.ReadFile(filepath.Join(dir, test+".cpu"))
		if err != nil {
			return 0, err
		}
		secs, err := parseCPU(string(text))
		if err != nil {
			return 0, err
		}
		if t.Bytes <= 0 {
			return 0, ErrIperfNoTotal
		}
		return secs / (t.Bytes / 1e9), nil
	}
}

func rssFile(name string) extractor {
	return func(dir string) (float64, error) {
		text, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		return parseRSS(string(text))
	}
}
