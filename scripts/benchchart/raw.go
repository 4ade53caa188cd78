package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Sentinel errors for raw benchmark output that cannot be used. The summary
// skips a round whose file fails to parse rather than guessing a number.
var (
	ErrIperfError   = errors.New("iperf3 reported an error")
	ErrIperfNoTotal = errors.New("iperf3 output has no receiver total")
	ErrNoPingReply  = errors.New("ping output has no replies")
	ErrBadCPU       = errors.New("malformed cpu tick file")
	ErrBadRSS       = errors.New("malformed rss file")
)

// iperfTotal is the receiver side of one iperf3 run: what actually arrived,
// which is what a tunnel is judged on (the sender side counts what was
// offered, including what the tunnel dropped).
type iperfTotal struct {
	Seconds     float64 `json:"seconds"`
	Bytes       float64 `json:"bytes"`
	BitsPerSec  float64 `json:"bits_per_second"`
	LostPercent float64 `json:"lost_percent"`
	Packets     float64 `json:"packets"`
}

// iperfResult holds the few fields of iperf3 --json output the benchmark uses.
type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumReceived *iperfTotal `json:"sum_received"`
	} `json:"end"`
}

// parseIperf reads iperf3 --json output and returns the receiver total.
func parseIperf(data []byte) (iperfTotal, error) {
	var r iperfResult
	if err := json.Unmarshal(data, &r); err != nil {
		return iperfTotal{}, fmt.Errorf("iperf3 json: %w", err)
	}
	if r.Error != "" {
		return iperfTotal{}, fmt.Errorf("%w: %s", ErrIperfError, r.Error)
	}
	t := r.End.SumReceived
	if t == nil || t.Seconds <= 0 {
		return iperfTotal{}, ErrIperfNoTotal
	}
	return *t, nil
}

// parsePing returns the round-trip times in milliseconds of every reply
// line ("... time=0.123 ms") in ping's output, in order.
func parsePing(r io.Reader) ([]float64, error) {
	var rtts []float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, " time=")
		if i < 0 || !strings.Contains(line, "bytes from") {
			continue
		}
		field, _, _ := strings.Cut(line[i+len(" time="):], " ")
		v, err := strconv.ParseFloat(field, 64)
		if err != nil || v < 0 || v != v {
			continue
		}
		rtts = append(rtts, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rtts) == 0 {
		return nil, ErrNoPingReply
	}
	return rtts, nil
}

// parseCPU reads "ticks_before ticks_after clk_tck" as bench.sh writes it
// and returns the CPU-seconds spent in between.
func parseCPU(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return 0, ErrBadCPU
	}
	var n [3]int64
	for i, x := range f {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil || v < 0 {
			return 0, ErrBadCPU
		}
		n[i] = v
	}
	if n[2] == 0 || n[1] < n[0] {
		return 0, ErrBadCPU
	}
	return float64(n[1]-n[0]) / float64(n[2]), nil
}

// parseRSS reads the VmHWM values (KiB) of the daemons, space separated,
// and returns the largest in MiB: the goal is per daemon.
func parseRSS(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, ErrBadRSS
	}
	var peak int64
	for _, x := range f {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil || v < 0 {
			return 0, ErrBadRSS
		}
		peak = max(peak, v)
	}
	return float64(peak) / 1024, nil
}

// parseMeta reads key=value lines; lines without "=" are ignored.
func parseMeta(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) != "" {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}
