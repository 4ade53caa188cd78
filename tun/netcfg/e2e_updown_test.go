package netcfg

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func splitSettings(dir string) Settings {
	return Settings{
		Interface:  testIface,
		Addresses:  prefixes("198.18.0.1/24", "fd00::1/64"),
		MTU:        1380,
		DNS:        []netip.Addr{netip.MustParseAddr("198.18.0.53")},
		DNSSearch:  []string{"corp.example"},
		PostUp:     []string{"echo up %i >> " + dir + "/hooks"},
		PostDown:   []string{"echo down %i >> " + dir + "/hooks"},
		AllowedIPs: prefixes("198.18.0.2/32", "198.18.5.0/24", "fd00:5::/64"),
	}
}

func TestE2EUpDown(t *testing.T) {
	n := newTestNS(t)
	n.addLink(testIface)
	s := splitSettings(n.dir)
	ctx := context.Background()
	if _, err := n.r.Up(ctx, s, Device{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"[#] ip -4 address add 198.18.0.1/24 dev wgt0",
		"[#] ip -6 address add fd00::1/64 dev wgt0",
		"[#] ip link set mtu 1380 up dev wgt0",
		"[#] resolvconf -a tun.wgt0 -m 0 -x",
		"[#] ip -6 route add fd00:5::/64 dev wgt0",
		"[#] ip -4 route add 198.18.5.0/24 dev wgt0",
		"[#] echo up wgt0 >> " + n.dir + "/hooks",
	}
	got := n.takeLines()
	got[3] = strings.Replace(got[3], n.dir+"/", "", 1)
	if !slices.Equal(got, want) {
		t.Fatalf("printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mustContain(t, "addresses", n.ip("addr", "show", "dev", testIface),
		"inet 198.18.0.1/24 scope global wgt0", "inet6 fd00::1/64 scope global", "mtu 1380", ",UP")
	mustContain(t, "routes", n.ip("route"), "198.18.5.0/24 dev wgt0 scope link \n")
	mustContain(t, "v6 routes", n.ip("-6", "route"), "fd00:5::/64 dev wgt0 metric 1024")
	mustContain(t, "dns log", n.file("dns.log"), "argv: -a tun.wgt0 -m 0 -x\nnameserver 198.18.0.53\nsearch corp.example\n")
	mustContain(t, "hooks", n.file("hooks"), "up wgt0\n")

	for range 2 { // Down is idempotent.
		if err := n.r.Down(ctx, s, Device{}); err != nil {
			t.Fatal(err)
		}
	}
	mustNotContain(t, "addresses after down", n.ip("addr", "show", "dev", testIface), "198.18.0.1", "fd00::1")
	mustNotContain(t, "routes after down", n.ip("route")+n.ip("-6", "route"), "198.18.5.0", "fd00:5::")
	mustContain(t, "dns log", n.file("dns.log"), "argv: -d tun.wgt0 -f\n")
	mustContain(t, "hooks", n.file("hooks"), "down wgt0\n")
}

func TestE2EPostUpFailureUndoes(t *testing.T) {
	n := newTestNS(t)
	s := splitSettings(n.dir)
	s.AllowedIPs = append(s.AllowedIPs, prefixes("0.0.0.0/0", "::/0")...)
	s.PostUp = append(s.PostUp, "exit 3")
	var mark uint32
	_, err := n.r.Up(context.Background(), s, n.device(&mark))
	if !errors.Is(err, ErrHook) || !strings.Contains(err.Error(), "PostUp hook `exit 3'") {
		t.Fatalf("Up error = %v, want the failing PostUp hook", err)
	}
	if _, lerr := n.h.LinkByName(testIface); lerr == nil {
		t.Error("link survived a failed up")
	}
	rules := n.ip("rule") + n.ip("-6", "rule")
	mustNotContain(t, "rules", rules, "51820", "suppress_prefixlength")
	mustContain(t, "dns log", n.file("dns.log"), "argv: -d tun.wgt0 -f\n")
	mustNotContain(t, "nft tables", n.exec("nft", "list", "tables"), "wg-quick")
}

func TestE2EErrorNamesStep(t *testing.T) {
	n := newTestNS(t)
	n.addLink(testIface)
	s := Settings{Interface: testIface, Addresses: prefixes("198.18.0.1/24", "198.18.0.1/24"), MTU: 1420}
	_, err := n.r.Up(context.Background(), s, Device{})
	if err == nil || err.Error() != "add address 198.18.0.1/24 to wgt0: file exists" {
		t.Fatalf("err = %v", err)
	}
	mustNotContain(t, "addresses", n.ip("addr", "show", "dev", testIface), "198.18.0.1")
}

func TestE2ETableFixedAndOff(t *testing.T) {
	n := newTestNS(t)
	n.addLink(testIface)
	s := Settings{Interface: testIface, MTU: 1420, Table: "1234", AllowedIPs: prefixes("0.0.0.0/0", "198.18.7.0/24")}
	u, err := n.r.Up(context.Background(), s, Device{})
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "table 1234", n.ip("route", "show", "table", "1234"), "default dev wgt0 scope link", "198.18.7.0/24 dev wgt0 scope link")
	mustNotContain(t, "rules", n.ip("rule"), "1234")
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "table 1234 after undo", n.ip("route", "show", "table", "all"), "table 1234")

	// Table 0 (unspec), as wg-quick passes it to ip: the kernel puts the
	// routes, the default route too, in main, and down finds them there.
	// 0x4d2 is 1234 in the hex iproute2 reads.
	for _, tc := range []struct{ table, show string }{{"0", "main"}, {"0x4d2", "1234"}} {
		s.Table = tc.table
		n.takeLines()
		u, err = n.r.Up(context.Background(), s, Device{})
		if err != nil {
			t.Fatalf("Table = %s: %v", tc.table, err)
		}
		mustContain(t, "Table = "+tc.table+" lines", strings.Join(n.takeLines(), "\n"), "ip -4 route add 0.0.0.0/0 dev wgt0 table "+tc.table)
		mustContain(t, "Table = "+tc.table, n.ip("route", "show", "table", tc.show), "default dev wgt0 scope link", "198.18.7.0/24 dev wgt0 scope link")
		mustNotContain(t, "rules", n.ip("rule"), "51820")
		if err := u.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		mustNotContain(t, "Table = "+tc.table+" after undo", n.ip("route", "show", "table", tc.show), "wgt0")
	}

	s.Table = "off"
	n.takeLines()
	if _, err := n.r.Up(context.Background(), s, Device{}); err != nil {
		t.Fatal(err)
	}
	if got := n.takeLines(); len(got) != 1 {
		t.Fatalf("Table=off printed %q, want only the mtu line", got)
	}
}
