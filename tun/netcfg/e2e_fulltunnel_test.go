package netcfg

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func fullSettings() Settings {
	return Settings{
		Interface:  testIface,
		Addresses:  prefixes("198.18.0.1/24", "fd00::1/64"),
		MTU:        1420,
		AllowedIPs: prefixes("0.0.0.0/0", "::/0"),
	}
}

// wgQuickRules is what "ip rule" shows after wg-quick up of a full tunnel
// in a fresh namespace.
const wgQuickRules = "0:\tfrom all lookup local\n" +
	"32764:\tfrom all lookup main suppress_prefixlength 0\n" +
	"32765:\tnot from all fwmark 0xca6c lookup 51820\n" +
	"32766:\tfrom all lookup main\n" +
	"32767:\tfrom all lookup default\n"

func TestE2EFullTunnel(t *testing.T) {
	n := newTestNS(t)
	var mark uint32
	ctx := context.Background()
	if _, err := n.r.Up(ctx, fullSettings(), n.device(&mark)); err != nil {
		t.Fatal(err)
	}
	if mark != 51820 {
		t.Fatalf("fwmark %d, want 51820", mark)
	}
	if got := n.ip("rule"); got != wgQuickRules {
		t.Errorf("ip rule:\n%s\nwant\n%s", got, wgQuickRules)
	}
	v6 := strings.ReplaceAll(wgQuickRules, "32767:\tfrom all lookup default\n", "")
	if got := n.ip("-6", "rule"); got != v6 {
		t.Errorf("ip -6 rule:\n%s\nwant\n%s", got, v6)
	}
	mustContain(t, "table 51820", n.ip("route", "show", "table", "51820"), "default dev wgt0 scope link")
	mustContain(t, "table 51820 v6", n.ip("-6", "route", "show", "table", "51820"), "default dev wgt0 metric 1024")
	mustContain(t, "src_valid_mark", n.exec("sysctl", "net.ipv4.conf.all.src_valid_mark"), "= 1")
	nft := n.exec("nft", "list", "ruleset")
	mustContain(t, "nft", nft, "table ip wg-quick-wgt0", "table ip6 wg-quick-wgt0",
		`iifname != "wgt0" ip daddr 198.18.0.1 fib saddr type != local drop`, "meta mark set ct mark")
	printed := strings.Join(n.takeLines(), "\n")
	mustContain(t, "printed", printed, "[#] wg set wgt0 fwmark 51820\n[#] ip -6 route add ::/0 dev wgt0 table 51820\n"+
		"[#] ip -6 rule add not fwmark 51820 table 51820\n[#] ip -6 rule add table main suppress_prefixlength 0\n",
		"[#] ip -4 rule add table main suppress_prefixlength 0\n[#] sysctl -q net.ipv4.conf.all.src_valid_mark=1\n")

	if err := n.r.Down(ctx, fullSettings(), n.device(&mark)); err != nil {
		t.Fatal(err)
	}
	checkClean(t, n)
	if err := n.r.Down(ctx, fullSettings(), Device{}); err != nil {
		t.Fatalf("second down: %v", err)
	}
}

func checkClean(t *testing.T, n *testNS) {
	t.Helper()
	rules := n.ip("rule") + n.ip("-6", "rule")
	mustNotContain(t, "rules", rules, "51820", "suppress_prefixlength")
	mustNotContain(t, "nft", n.exec("nft", "list", "tables"), "wg-quick")
	mustNotContain(t, "routes", n.ip("route", "show", "table", "all"), "wgt0")
}

// TestE2EDownAfterKilledDaemon leaves the rules and nft tables of a full
// tunnel behind with the link gone and the fwmark unknown, as after a
// killed daemon, and expects Down to find and remove them.
func TestE2EDownAfterKilledDaemon(t *testing.T) {
	n := newTestNS(t)
	var mark uint32
	ctx := context.Background()
	if _, err := n.r.Up(ctx, fullSettings(), n.device(&mark)); err != nil {
		t.Fatal(err)
	}
	// Another tunnel's rule, which must survive.
	n.h.LinkSetUp(n.addLink("wgother"))
	n.ip("route", "add", "default", "dev", "wgother", "table", "51821")
	n.ip("rule", "add", "not", "fwmark", "51821", "table", "51821")
	n.ip("rule", "add", "table", "main", "suppress_prefixlength", "0")
	if err := n.h.LinkDel(mustLink(t, n, testIface)); err != nil {
		t.Fatal(err)
	}
	if err := n.r.Down(ctx, fullSettings(), Device{}); err != nil {
		t.Fatal(err)
	}
	rules := n.ip("rule")
	mustNotContain(t, "rules", rules, "lookup 51820")
	// The other tunnel keeps its own suppress rule, the one just below
	// its fwmark rule: deleting the first suppress rule found took that
	// one and left its fwmark rule ahead of ours, so the main table's
	// routes (the LAN's) were skipped for everything.
	mustContain(t, "rules", rules, "32763:\tnot from all fwmark 0xca6d lookup 51821", "32762:\tfrom all lookup main suppress_prefixlength 0")
	mustNotContain(t, "rules", rules, "32764:")
	mustNotContain(t, "v6 rules", n.ip("-6", "rule"), "51820", "suppress")
	mustNotContain(t, "nft", n.exec("nft", "list", "tables"), "wg-quick")
}

func mustLink(t *testing.T, n *testNS, name string) netlink.Link {
	t.Helper()
	l, err := n.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestE2EReload(t *testing.T) {
	n := newTestNS(t)
	n.addLink(testIface)
	ctx := context.Background()
	old := Settings{Interface: testIface, Addresses: prefixes("198.18.0.1/24"), MTU: 1420,
		AllowedIPs: prefixes("198.18.5.0/24", "198.18.6.0/24")}
	if _, err := n.r.Up(ctx, old, Device{}); err != nil {
		t.Fatal(err)
	}
	var mark uint32
	dev := Device{SetFwMark: func(m uint32) error { mark = m; return nil }}
	next := old
	next.Addresses = prefixes("198.18.0.1/24", "fd00::1/64")
	next.MTU = 1400
	next.AllowedIPs = prefixes("198.18.6.0/24", "198.18.7.0/24", "0.0.0.0/0")
	next.DNS = []netip.Addr{netip.MustParseAddr("198.18.0.53")}
	if err := n.r.Reload(ctx, old, next, dev); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "addresses", n.ip("addr", "show", "dev", testIface), "fd00::1/64", "198.18.0.1/24", "mtu 1400")
	routes := n.ip("route")
	mustContain(t, "routes", routes, "198.18.6.0/24 dev wgt0", "198.18.7.0/24 dev wgt0")
	mustNotContain(t, "routes", routes, "198.18.5.0")
	mustContain(t, "rules", n.ip("rule"), "not from all fwmark 0xca6c lookup 51820")
	mustContain(t, "dns", n.file("dns.log"), "nameserver 198.18.0.53")

	dev.FwMark = func() (uint32, error) { return mark, nil }
	if err := n.r.Reload(ctx, next, old, dev); err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "rules after reload back", n.ip("rule"), "51820", "suppress")
	mustNotContain(t, "addresses", n.ip("addr", "show", "dev", testIface), "fd00::1/64")
	mustContain(t, "dns", n.file("dns.log"), "argv: -d tun.wgt0 -f")
}

// TestE2EReloadAddressChange: replacing the only IPv4 address keeps the
// peers' routes (the kernel flushes a family's routes with its last
// address) and redoes the full tunnel: its default route, one set of
// rules, and firewall rules for the new address instead of the old.
func TestE2EReloadAddressChange(t *testing.T) {
	n := newTestNS(t)
	var mark uint32
	ctx := context.Background()
	old := Settings{Interface: testIface, Addresses: prefixes("198.18.0.1/24"), MTU: 1420,
		AllowedIPs: prefixes("198.18.48.0/24", "0.0.0.0/0")}
	if _, err := n.r.Up(ctx, old, n.device(&mark)); err != nil {
		t.Fatal(err)
	}
	next := old
	next.Addresses = prefixes("198.18.0.2/24")
	dev := n.device(&mark)
	dev.FwMark = func() (uint32, error) { return mark, nil }
	if err := n.r.Reload(ctx, old, next, dev); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "address", n.ip("addr", "show", "dev", testIface), "198.18.0.2/24")
	mustContain(t, "main routes", n.ip("route"), "198.18.48.0/24 dev wgt0")
	mustContain(t, "table 51820", n.ip("route", "show", "table", "51820"), "default dev wgt0")
	if rules := n.ip("rule"); strings.Count(rules, "lookup 51820") != 1 || strings.Count(rules, "suppress_prefixlength") != 1 {
		t.Errorf("rules after reload:\n%s", rules)
	}
	nft := n.exec("nft", "list", "ruleset")
	mustContain(t, "nft", nft, "ip daddr 198.18.0.2")
	mustNotContain(t, "nft", nft, "198.18.0.1")
	if err := n.r.Down(ctx, next, dev); err != nil {
		t.Fatal(err)
	}
	checkClean(t, n)
}

// TestE2EFullTunnelIptables: without nft, the full tunnel's firewall rules
// go in with iptables-restore and ip6tables-restore, as wg-quick's
// fallback, and down removes exactly them.
func TestE2EFullTunnelIptables(t *testing.T) {
	n := newTestNS(t)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("iptables-restore not installed (the Makefile installs iptables)")
	}
	n.r.Nft = nil // LookPath finds nothing: no nft
	n.r.Iptables = []string{"ip", "netns", "exec", n.name}
	// Someone else's rule with a comment, which must survive down.
	n.exec("iptables", "-t", "raw", "-A", "PREROUTING", "-m", "comment", "--comment", "not ours", "-j", "ACCEPT")
	var mark uint32
	ctx := context.Background()
	if _, err := n.r.Up(ctx, fullSettings(), n.device(&mark)); err != nil {
		t.Fatal(err)
	}
	raw := n.exec("iptables-save", "-t", "raw")
	mustContain(t, "iptables raw", raw, `-A PREROUTING -d 198.18.0.1/32 ! -i wgt0 -m addrtype ! --src-type LOCAL -m comment --comment "wg-quick(8) rule for wgt0" -j DROP`)
	mangle := n.exec("iptables-save", "-t", "mangle")
	mustContain(t, "iptables mangle", mangle, "--save-mark", "--restore-mark", "--mark 0xca6c")
	mustContain(t, "ip6tables raw", n.exec("ip6tables-save", "-t", "raw"), "-d fd00::1/128 ! -i wgt0")
	mustContain(t, "printed", strings.Join(n.takeLines(), "\n"), "iptables-restore -n", "ip6tables-restore -n")
	if err := n.r.Down(ctx, fullSettings(), n.device(&mark)); err != nil {
		t.Fatal(err)
	}
	all := n.exec("iptables-save") + n.exec("ip6tables-save")
	mustNotContain(t, "iptables after down", all, "wg-quick(8) rule for wgt0")
	mustContain(t, "the other rule", all, "not ours")
	checkClean(t, n)
}

// TestFirewallWarnsWithoutTools: with neither nft nor iptables-restore,
// up says that the addresses are unprotected and carries on.
func TestFirewallWarnsWithoutTools(t *testing.T) {
	var lines []string
	r := &Runner{LookPath: func(string) (string, error) { return "", exec.ErrNotFound },
		Print: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }}
	st := &upState{s: Settings{Interface: "wg0"}}
	if err := r.addFirewall(context.Background(), &Undo{r: r}, st, netlink.FAMILY_V4); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "Warning: neither nft nor iptables-restore found") {
		t.Fatalf("printed %q", lines)
	}
}

func TestIptablesScripts(t *testing.T) {
	got := iptablesScript("wg0", 51820, []netip.Addr{netip.MustParseAddr("198.18.0.1")})
	want := "*raw\n-I PREROUTING ! -i wg0 -d 198.18.0.1 -m addrtype ! --src-type LOCAL -j DROP -m comment --comment \"wg-quick(8) rule for wg0\"\n" +
		"COMMIT\n*mangle\n-I POSTROUTING -m mark --mark 51820 -p udp -j CONNMARK --save-mark -m comment --comment \"wg-quick(8) rule for wg0\"\n" +
		"-I PREROUTING -p udp -j CONNMARK --restore-mark -m comment --comment \"wg-quick(8) rule for wg0\"\nCOMMIT\n"
	if got != want {
		t.Errorf("script:\n%s\nwant\n%s", got, want)
	}
	save := "# Generated by iptables-save\n*raw\n:PREROUTING ACCEPT [0:0]\n" +
		"-A PREROUTING -d 198.18.0.1/32 ! -i wg0 -m addrtype ! --src-type LOCAL -m comment --comment \"wg-quick(8) rule for wg0\" -j DROP\n" +
		"-A PREROUTING -m comment --comment \"wg-quick(8) rule for wg01\" -j DROP\n" +
		"COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n"
	del := iptablesDeleteScript(save, "wg0")
	wantDel := "*raw\n-D PREROUTING -d 198.18.0.1/32 ! -i wg0 -m addrtype ! --src-type LOCAL -m comment --comment \"wg-quick(8) rule for wg0\" -j DROP\nCOMMIT\n*filter\nCOMMIT\n"
	if del != wantDel {
		t.Errorf("delete script:\n%s\nwant\n%s", del, wantDel)
	}
	if iptablesDeleteScript("*raw\nCOMMIT\n", "wg0") != "" {
		t.Error("a listing without our rules gives a script")
	}
}
