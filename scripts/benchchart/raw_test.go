package main

import (
	"errors"
	"strings"
	"testing"
)

const udpJSON = `{"start":{},"end":{"sum_sent":{"seconds":1,"bytes":104040864,"bits_per_second":832318588.8,"lost_percent":0,"packets":74742},
"sum_received":{"seconds":1.036237,"bytes":37762176,"bits_per_second":291533122.2,"lost_packets":47614,"packets":74742,"lost_percent":63.7}}}`

func TestParseIperf(t *testing.T) {
	got, err := parseIperf([]byte(udpJSON))
	if err != nil {
		t.Fatal(err)
	}
	if got.BitsPerSec != 291533122.2 || got.LostPercent != 63.7 || got.Bytes != 37762176 {
		t.Errorf("got %+v, want the receiver side", got)
	}
	if _, err := parseIperf([]byte(`{"error":"unable to connect"}`)); !errors.Is(err, ErrIperfError) {
		t.Errorf("error run: err = %v, want ErrIperfError", err)
	}
	if _, err := parseIperf([]byte(`{"end":{}}`)); !errors.Is(err, ErrIperfNoTotal) {
		t.Errorf("empty run: err = %v, want ErrIperfNoTotal", err)
	}
	if _, err := parseIperf([]byte(`{`)); err == nil {
		t.Error("truncated json accepted")
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 198.19.0.2 (198.19.0.2) 56(84) bytes of data.
64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time=0.481 ms
64 bytes from 198.19.0.2: icmp_seq=2 ttl=64 time=0.5 ms
From 198.19.0.1 icmp_seq=3 Destination Host Unreachable
64 bytes from 198.19.0.2: icmp_seq=4 ttl=64 time=bogus ms

--- 198.19.0.2 ping statistics ---
rtt min/avg/max/mdev = 0.265/0.497/3.538/0.474 ms`
	got, err := parsePing(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 0.481 || got[1] != 0.5 {
		t.Errorf("got %v, want [0.481 0.5]", got)
	}
	if _, err := parsePing(strings.NewReader("connect: Network is unreachable\n")); !errors.Is(err, ErrNoPingReply) {
		t.Errorf("no replies: err = %v, want ErrNoPingReply", err)
	}
}

func TestParseCPUAndRSS(t *testing.T) {
	if got, err := parseCPU("5 130 100\n"); err != nil || got != 1.25 {
		t.Errorf("parseCPU = %v, %v; want 1.25", got, err)
	}
	for _, bad := range []string{"", "1 2", "2 1 100", "1 2 0", "a b c", "-1 2 100"} {
		if _, err := parseCPU(bad); !errors.Is(err, ErrBadCPU) {
			t.Errorf("parseCPU(%q) err = %v, want ErrBadCPU", bad, err)
		}
	}
	if got, err := parseRSS("160668 198696 \n"); err != nil || got != 198696.0/1024 {
		t.Errorf("parseRSS = %v, %v", got, err)
	}
	if _, err := parseRSS(" "); !errors.Is(err, ErrBadRSS) {
		t.Errorf("empty rss err = %v", err)
	}
}

func TestParseMeta(t *testing.T) {
	m := parseMeta("date=2026-01-01\ncpu=Intel(R) x=y\nnoequals\n=empty\n")
	if m["date"] != "2026-01-01" || m["cpu"] != "Intel(R) x=y" || len(m) != 2 {
		t.Errorf("got %v", m)
	}
}

func FuzzParseIperf(f *testing.F) {
	f.Add([]byte(udpJSON))
	f.Add([]byte(`{"error":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseIperf(data)
		if err == nil && got.Seconds <= 0 {
			t.Errorf("accepted a total without a duration: %+v", got)
		}
	})
}

func FuzzParsePing(f *testing.F) {
	f.Add("64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time=0.481 ms\n")
	f.Add("64 bytes from x time=NaN ms\n")
	f.Fuzz(func(t *testing.T, s string) {
		rtts, err := parsePing(strings.NewReader(s))
		if err == nil && len(rtts) == 0 {
			t.Error("no error and no samples")
		}
		for _, v := range rtts {
			if v < 0 || v != v {
				t.Errorf("bad sample %v", v)
			}
		}
	})
}

func FuzzParseCPU(f *testing.F) {
	f.Add("5 130 100")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseCPU(s); err == nil && v < 0 {
			t.Errorf("negative cpu %v", v)
		}
		if v, err := parseRSS(s); err == nil && v < 0 {
			t.Errorf("negative rss %v", v)
		}
		_ = parseMeta(s)
	})
}
