package main

import (
	"encoding/json"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPrettyTime(t *testing.T) {
	cases := map[uint64]string{
		0: "", 1: "1 second", 61: "1 minute, 1 second", 3600: "1 hour",
		2*86400 + 5: "2 days, 5 seconds", 365*86400 + 3661: "1 year, 1 hour, 1 minute, 1 second",
	}
	for in, want := range cases {
		if got := stripANSI(prettyTime(in)); got != want {
			t.Errorf("prettyTime(%d) = %q, want %q", in, got, want)
		}
	}
	if got := prettyTime(2); got != "2 \x1b[36mseconds\x1b[0m" {
		t.Errorf("colored prettyTime = %q", got)
	}
}

func TestAgo(t *testing.T) {
	now := time.Unix(1000, 900)
	cases := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1000, 0), "Now"},
		{time.Unix(999, 999), "1 second ago"},
		{time.Unix(1001, 0), "(System clock wound backward; connection problems may ensue.)"},
	}
	for _, c := range cases {
		if got := stripANSI(ago(c.t, now)); got != c.want {
			t.Errorf("ago(%v) = %q, want %q", c.t, got, c.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	cases := map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 1<<20 - 1: "1024.00 KiB",
		1 << 20: "1.00 MiB", 3 << 30: "3.00 GiB", 1 << 40: "1.00 TiB", 1<<64 - 1: "16777216.00 TiB",
	}
	for in, want := range cases {
		if got := stripANSI(formatBytes(in)); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestTextHelpers(t *testing.T) {
	cases := map[string]string{
		endpointText(netip.MustParseAddrPort("198.18.0.1:1")):                     "198.18.0.1:1",
		endpointText(netip.MustParseAddrPort("[::ffff:1.2.3.4]:5")):               "[::ffff:1.2.3.4]:5",
		endpointText(netip.MustParseAddrPort("[fe80::1%eth0]:5")):                 "[fe80::1%eth0]:5",
		endpointText(netip.AddrPort{}):                                            "(none)",
		prefixText(netip.MustParsePrefix("::1.2.3.4/128")):                        "::1.2.3.4/128",
		prefixText(netip.MustParsePrefix("::1/128")):                              "::1/128",
		prefixText(netip.MustParsePrefix("::/0")):                                 "::/0",
		joinPrefixes(nil, ","):                                                    "(none)",
		fwmarkText(0) + fwmarkText(255) + keepaliveText(0) + maskedKey("k", true): "off0xffoff(hidden)",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestColorMode(t *testing.T) {
	if !colorMode("always", false) || colorMode("never", true) || !colorMode("", true) || colorMode("auto", false) {
		t.Error("colorMode does not follow WG_COLOR_MODE")
	}
}

// FuzzStripANSI checks that stripping never panics and leaves no escape
// sequence start behind.
func FuzzStripANSI(f *testing.F) {
	f.Add("\x1b[0m\x1b[32minterface\x1b[0m: wg0")
	f.Add("\x1b[")
	f.Fuzz(func(t *testing.T, s string) {
		if out := stripANSI(s); strings.Contains(out, "\x1b[") && !strings.Contains(s, "\x1b\x1b[") {
			t.Errorf("stripANSI(%q) = %q", s, out)
		}
	})
}

// FuzzParseSetArgs feeds arbitrary words to the `set` parser: it must not
// panic, and a successful parse must name a peer before any peer option.
func FuzzParseSetArgs(f *testing.F) {
	f.Add("listen-port 1 fwmark 0x10 peer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= allowed-ips 1.2.3.4/8,-::/0 persistent-keepalive off remove")
	f.Add("peer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= endpoint [::1]:5")
	f.Fuzz(func(t *testing.T, s string) {
		e, _, _ := newTestEnv(&fakeBackend{}, time.Unix(0, 0))
		e.Stderr = io.Discard
		e.Resolver = nil // a host name must fail before reaching the network
		args := strings.Fields(s)
		for _, a := range args {
			if a == "endpoint" || a == "private-key" || a == "preshared-key" {
				return // those read files or resolve names
			}
		}
		cfg, err := parseSetArgs(e, args)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

// FuzzParseAllowedIP checks the allowed-IP parser against netip: anything
// accepted has a valid prefix whose length fits the family.
func FuzzParseAllowedIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4/32", "fd00::/8", "1.2.3.4", "::1.2.3.4/000128", "1.2.3.4/", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, msg := parseAllowedIP(s)
		if msg == "" && (!p.IsValid() || p.Bits() > p.Addr().BitLen()) {
			t.Errorf("parseAllowedIP(%q) = %v", s, p)
		}
	})
}

// TestShowJSON checks the JSON document: keys hidden by default, times in
// both forms, null counters while no source exists.
func TestShowJSON(t *testing.T) {
	now := time.Unix(1700000000, 0)
	d := sampleState(t, "wg0", now)
	fb := &fakeBackend{names: []string{"wg0"}, devs: map[string]deviceState{"wg0": d}}
	e, out, errb := newTestEnv(fb, now)
	if rc := runShow(e, []string{"--json", "wg0"}); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb)
	}
	var got jsonInterface
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	p := got.Peers[1]
	if got.PrivateKey != "" || !got.HasPrivateKey || got.Counters != nil || p.PresharedKey != "" || !p.HasPresharedKey ||
		p.LatestHandshakeUnix != 1699996275 || p.LatestHandshake == nil || *p.LatestHandshake != "2023-11-14T21:11:15Z" ||
		p.Endpoint == nil || *p.Endpoint != "198.18.0.2:51821" || len(p.AllowedIPs) != 3 || got.Peers[0].LatestHandshake != nil {
		t.Errorf("unexpected JSON: %s", out)
	}
	e, out, _ = newTestEnv(fb, now)
	if rc := runShow(e, []string{"--json"}); rc != 0 || !strings.HasPrefix(out.String(), "[") {
		t.Errorf("show --json: rc %d, %q", rc, out)
	}
}
