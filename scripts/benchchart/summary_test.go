package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeRound fills one round directory the way bench.sh does.
func writeRound(t *testing.T, raw, impl string, gbps, rtt float64, ticks int) {
	t.Helper()
	dir := filepath.Join(raw, impl, "r1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bytes := gbps * 1e9 / 8 * 5
	iperf := func(loss float64) string {
		return `{"end":{"sum_received":{"seconds":5,"bytes":` + format9(bytes) + `,"bits_per_second":` +
			format9(gbps*1e9) + `,"lost_percent":` + format9(loss) + `}}}`
	}
	for _, n := range []string{"tcp1", "tcp1r", "tcp4", "udpmax"} {
		put(n+".json", iperf(0))
		put(n+".cpu", "0 "+format9(float64(ticks))+" 100")
	}
	put("udp1g.json", iperf(0.5))
	put("ping.txt", "64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time="+format9(rtt)+" ms\n")
	if impl != "veth" {
		put("rss_tcp.txt", "20480 40960")
		put("rss_all.txt", "20480 40960")
	}
}

// format9 writes a number the way JSON and the raw files spell it.
func format9(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func TestSummarizeTableJSONSVG(t *testing.T) {
	raw := t.TempDir()
	if err := os.WriteFile(filepath.Join(raw, "meta.txt"), []byte("impls=veth,wgd,wireguard-go\nrounds=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeRound(t, raw, "veth", 20, 0.04, 0)
	writeRound(t, raw, "wgd", 6, 0.1, 500)
	writeRound(t, raw, "wireguard-go", 3, 0.4, 1000)
	res, err := summarize(raw, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Metric{}
	for _, m := range res.Metrics {
		byKey[m.Key] = m
	}
	check := func(key string, wantRatio float64, wantMet bool) {
		t.Helper()
		m := byKey[key]
		if m.Ratio == nil || *m.Ratio < wantRatio-1e-9 || *m.Ratio > wantRatio+1e-9 {
			t.Errorf("%s ratio = %v, want %v", key, m.Ratio, wantRatio)
		}
		if m.Met == nil || *m.Met != wantMet {
			t.Errorf("%s met = %v, want %v", key, m.Met, wantMet)
		}
	}
	check("tcp1_gbps", 2, true)
	check("ping_avg_ms", 0.25, true)
	// wgd: 5 CPU-s over 3.75 GB; wireguard-go: 10 CPU-s over 1.875 GB.
	check("tcp1_cpu_s_per_gb", 0.25, true)
	check("udp1g_delivered_pct", 1, true)
	check("rss_tcp_mib", 1, true)
	if _, ok := byKey["rss_tcp_mib"].Values["veth"]; ok {
		t.Error("veth has a daemon metric")
	}

	var out bytes.Buffer
	if err := writeTable(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TCP 1 stream A->B", "2x", ">= 2.0x", "yes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "NO") {
		t.Errorf("table has a missed goal:\n%s", out.String())
	}
	out.Reset()
	if err := writeBars(&out, res); err != nil {
		t.Fatal(err)
	}
	// wgd's TCP bar is twice wireguard-go's: 24 cells against 12.
	if !strings.Contains(out.String(), "wgd           "+strings.Repeat("#", 24)+" ") {
		t.Errorf("bars:\n%s", out.String())
	}
	out.Reset()
	if err := writeSVG(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "<svg") || !strings.HasSuffix(out.String(), "</svg>\n") {
		t.Error("not an svg document")
	}
}

func TestMissingRoundIsFailedNotZero(t *testing.T) {
	raw := t.TempDir()
	if err := os.WriteFile(filepath.Join(raw, "meta.txt"), []byte("impls=wgd,wireguard-go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeRound(t, raw, "wireguard-go", 3, 0.4, 1000)
	if err := os.MkdirAll(filepath.Join(raw, "wgd", "r1"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := summarize(raw, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Metrics {
		if m.Values["wgd"].Median != nil || m.Ratio != nil || m.Met != nil {
			t.Errorf("%s: a contender without data got a value", m.Key)
		}
	}
	var out bytes.Buffer
	if err := writeTable(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "failed") {
		t.Errorf("table does not say failed:\n%s", out.String())
	}
}

func TestMedian(t *testing.T) {
	if median(nil) != nil {
		t.Error("median of nothing is not nil")
	}
	if m := *median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd median = %v", m)
	}
	if m := *median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("even median = %v", m)
	}
	if p := p99([]float64{5, 1, 2}); p != 5 {
		t.Errorf("p99 = %v", p)
	}
}
