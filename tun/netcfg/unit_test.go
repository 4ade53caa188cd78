package netcfg

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wgdvpn/wgd/conf"
)

func TestPickMTU(t *testing.T) {
	cases := []struct {
		name      string
		endpoints []int
		def       int
		want      int
	}{
		{"no endpoints, no default route", nil, 0, 1420},
		{"default route only", nil, 9000, 8920},
		{"largest endpoint route wins", []int{1500, 1400, 9000}, 1280, 8920},
		{"endpoints beat default route", []int{1400}, 9000, 1320},
		{"unresolvable endpoints fall back", []int{0, 0}, 1492, 1412},
	}
	for _, c := range cases {
		if got := pickMTU(c.endpoints, c.def); got != c.want {
			t.Errorf("%s: pickMTU(%v, %d) = %d, want %d", c.name, c.endpoints, c.def, got, c.want)
		}
	}
}

func TestParseTable(t *testing.T) {
	dir := t.TempDir()
	rt := filepath.Join(dir, "rt_tables")
	os.WriteFile(rt, []byte("# comment\n255\tlocal\n200 vpn # trailing\n0x10 hex\nbad line\n"), 0o644)
	files := []string{filepath.Join(dir, "missing"), rt}
	cases := []struct {
		in   string
		want Table
		err  bool
	}{
		{"", Table{Mode: TableAuto}, false},
		{"auto", Table{Mode: TableAuto, Name: "auto"}, false},
		{"off", Table{Mode: TableOff, Name: "off"}, false},
		{"1234", Table{Mode: TableFixed, ID: 1234, Name: "1234"}, false},
		{"0x20", Table{Mode: TableFixed, ID: 32, Name: "0x20"}, false},
		{"main", Table{Mode: TableFixed, ID: 254, Name: "main"}, false},
		{"vpn", Table{Mode: TableFixed, ID: 200, Name: "vpn"}, false},
		{"hex", Table{Mode: TableFixed, ID: 16, Name: "hex"}, false},
		{"nope", Table{}, true},
		{"0", Table{Mode: TableFixed, ID: 0, Name: "0"}, false},
		{"0X1f", Table{Mode: TableFixed, ID: 31, Name: "0X1f"}, false},
		{"010", Table{Mode: TableFixed, ID: 8, Name: "010"}, false},
		{"0xffffffff", Table{Mode: TableFixed, ID: 0xffffffff, Name: "0xffffffff"}, false},
		{"08", Table{}, true},
		{"0x", Table{}, true},
		{"0b1", Table{}, true},
		{"1_000", Table{}, true},
		{"4294967296", Table{}, true},
	}
	for _, c := range cases {
		got, err := ParseTable(c.in, files)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseTable(%q) = %+v, %v; want %+v, err=%v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestUpNamesBadTable: a Table that is no table stops up before anything
// changes, with the file and key in the message.
func TestUpNamesBadTable(t *testing.T) {
	r := &Runner{ConfigFile: "/etc/wireguard/wg0.conf", RTTables: []string{filepath.Join(t.TempDir(), "missing")}}
	created := false
	_, err := r.Up(context.Background(), Settings{Interface: "wg0", Table: "nosuch"}, Device{Create: func(context.Context) error {
		created = true
		return nil
	}})
	want := `/etc/wireguard/wg0.conf: Table: unknown routing table "nosuch" (not auto, off, a table number or a name in rt_tables)`
	if err == nil || err.Error() != want || !errors.Is(err, ErrBadTable) || created {
		t.Fatalf("err = %v (created %v), want %s", err, created, want)
	}
}

func FuzzParseTable(f *testing.F) {
	for _, s := range []string{"", "auto", "off", "main", "51820", "0x10", "vpn"} {
		f.Add(s, "200 vpn\n# x\n")
	}
	f.Fuzz(func(t *testing.T, name, file string) {
		if id, ok := lookupTable(strings.NewReader(file), name); ok && id < 0 {
			t.Fatalf("negative id %d", id)
		}
		tb, err := ParseTable(name, nil)
		if err == nil && tb.Mode == TableFixed && (tb.ID < 0 || tb.ID > math.MaxUint32) {
			t.Fatalf("fixed table %q with id %d", name, tb.ID)
		}
		// A number is the number iproute2 reads (0, unspec, included).
		if n, ok := conf.ParseTableNumber(name); ok && (err != nil || tb.Mode != TableFixed || tb.ID != int(n)) {
			t.Fatalf("table number %q: %+v, %v; want id %d", name, tb, err, n)
		}
	})
}

func TestExpandHook(t *testing.T) {
	if got := expandHook("echo %i %i%%i > /tmp/x", "wg0"); got != "echo wg0 wg0%wg0 > /tmp/x" {
		t.Fatalf("got %q", got)
	}
}

func TestSortRoutes(t *testing.T) {
	in := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"),
		netip.MustParsePrefix("198.18.1.0/24"),
		netip.MustParsePrefix("198.18.2.7/32"),
		netip.MustParsePrefix("::/0"),
		netip.MustParsePrefix("fd00::/64"),
		netip.MustParsePrefix("198.18.9.0/24"),
		netip.MustParsePrefix("198.18.1.9/24"), // Same route as 198.18.1.0/24.
	}
	var got []string
	for _, p := range sortRoutes(in) {
		got = append(got, p.String())
	}
	// The order "LC_ALL=C sort -nr -k 2 -t /" gives.
	want := []string{"fd00::/64", "198.18.2.7/32", "198.18.9.0/24", "198.18.1.0/24", "::/0", "0.0.0.0/0"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDNSCommands(t *testing.T) {
	s := Settings{
		Interface: "wg0",
		DNS:       []netip.Addr{netip.MustParseAddr("198.18.0.53"), netip.MustParseAddr("fd00::53")},
		DNSSearch: []string{"corp.example", "lab.example"},
	}
	rc := setDNSCommands(dnsResolvconf, []string{"resolvconf"}, s, "tun.")
	if len(rc) != 1 || rc[0].String() != "resolvconf -a tun.wg0 -m 0 -x" ||
		rc[0].stdin != "nameserver 198.18.0.53\nnameserver fd00::53\nsearch corp.example lab.example\n" {
		t.Fatalf("resolvconf: %+v", rc)
	}
	rd := setDNSCommands(dnsResolvectl, []string{"resolvectl"}, s, "")
	if len(rd) != 2 || rd[0].String() != "resolvectl dns wg0 198.18.0.53 fd00::53" ||
		rd[1].String() != "resolvectl domain wg0 corp.example lab.example ~." {
		t.Fatalf("resolvectl: %+v", rd)
	}
	if u := unsetDNSCommands(dnsResolvconf, []string{"resolvconf"}, "wg0", "tun."); u[0].String() != "resolvconf -d tun.wg0 -f" {
		t.Fatalf("resolvconf down: %v", u)
	}
	if u := unsetDNSCommands(dnsResolvectl, []string{"resolvectl"}, "wg0", ""); u[0].String() != "resolvectl revert wg0" {
		t.Fatalf("resolvectl down: %v", u)
	}
}

func TestNftScript(t *testing.T) {
	got := nftScript(4, "wg0", 51820, []netip.Addr{netip.MustParseAddr("198.18.0.1")}) // 4 is not AF_INET6.
	for _, line := range []string{
		"add table ip6 wg-quick-wg0\n",
		"add chain ip6 wg-quick-wg0 preraw { type filter hook prerouting priority -300; }\n",
		"add rule ip6 wg-quick-wg0 preraw iifname != \"wg0\" ip6 daddr 198.18.0.1 fib saddr type != local drop\n",
		"add rule ip6 wg-quick-wg0 postmangle meta l4proto udp mark 51820 ct mark set mark \n",
		"add rule ip6 wg-quick-wg0 premangle meta l4proto udp meta mark set ct mark \n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("script lacks %q:\n%s", line, got)
		}
	}
	listing := "table inet filter\ntable ip wg-quick-wg0\ntable ip6 wg-quick-wg0\ntable ip wg-quick-wg01\n"
	del := nftDeleteScript(listing, "wg0", "")
	if del != "delete table ip wg-quick-wg0\ndelete table ip6 wg-quick-wg0\n" {
		t.Fatalf("delete script %q", del)
	}
	if del := nftDeleteScript(listing, "wg0", "ip6"); del != "delete table ip6 wg-quick-wg0\n" {
		t.Fatalf("delete script for ip6 only %q", del)
	}
}

func FuzzNftDeleteScript(f *testing.F) {
	f.Add("table ip wg-quick-wg0\n", "wg0")
	f.Fuzz(func(t *testing.T, listing, iface string) {
		for line := range strings.Lines(nftDeleteScript(listing, iface, "")) {
			if !strings.HasPrefix(line, "delete ") {
				t.Fatalf("bad line %q", line)
			}
		}
	})
}

// FuzzIptablesDeleteScript: whatever iptables-save prints, the delete
// script holds only table headers, COMMIT lines and "-D" rules that carry
// the interface's wg-quick comment, one per marked "-A" rule.
func FuzzIptablesDeleteScript(f *testing.F) {
	f.Add("*raw\n-A PREROUTING -m comment --comment \"wg-quick(8) rule for wg0\" -j DROP\nCOMMIT\n", "wg0")
	f.Add("*filter\n-A INPUT -j ACCEPT\nCOMMIT\n", "wg0")
	f.Fuzz(func(t *testing.T, listing, iface string) {
		script := iptablesDeleteScript(listing, iface)
		marker := iptablesMarker(iface)
		rules := 0
		for line := range strings.Lines(script) {
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "*"), line == "COMMIT":
			case strings.HasPrefix(line, "-D ") && strings.Contains(line, marker):
				rules++
			default:
				t.Fatalf("bad line %q", line)
			}
		}
		if script != "" && rules == 0 {
			t.Fatalf("a script without a rule: %q", script)
		}
	})
}

func TestCommandStringNamesProgram(t *testing.T) {
	c := command{argv: []string{"/usr/sbin/nft", "-f", "-"}}
	if got := c.String(); got != "nft -f -" {
		t.Fatalf("[#] line %q, want %q", got, "nft -f -")
	}
	if got := (command{}).String(); got != "" {
		t.Fatalf("empty command prints %q", got)
	}
}
