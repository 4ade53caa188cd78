package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2ERouteChangeMovesSource: peer B has two uplinks to a router M, A
// sits behind M. B's sticky source is the address of the uplink its route
// to A uses; when that route goes, B's next packets must leave from the
// other uplink's address (A then roams to it), and when the preferred route
// comes back, from the first again. Before wgd followed route changes, B
// kept sending from the old address until a handshake timer cleared it:
// about 15 s, and for good on a router that checks source addresses.
func TestE2ERouteChangeMovesSource(t *testing.T) {
	needRoot(t)
	h := newHomingSetup(t, "198.18.2.1", false)
	h.seenByA("198.18.2.1:51820")
	run(t, "ip", "-n", h.b, "route", "del", "198.18.1.0/24", "via", "198.18.2.254")
	h.seenByA("198.18.3.1:51820")
	run(t, "ip", "-n", h.b, "route", "add", "198.18.1.0/24", "via", "198.18.2.254", "metric", "10")
	h.seenByA("198.18.2.1:51820")
}

// TestE2ERouteChangeKeepsPolicySource: B routes by source address (ip rule
// from 198.18.3.1 table 100, through its second uplink), and A reaches B at
// that address. A route change elsewhere must not make B forget it: the
// route check looks the endpoint up from the sticky source, as the kernel
// module does. Looked up without it, the main table's route through the
// first uplink disagreed and B moved to 198.18.2.1 (behind a
// source-checking router, an outage; here A just follows).
func TestE2ERouteChangeKeepsPolicySource(t *testing.T) {
	needRoot(t)
	h := newHomingSetup(t, "198.18.3.1", true)
	h.seenByA("198.18.3.1:51820")
	run(t, "ip", "-n", h.b, "route", "add", "198.18.200.0/24", "via", "198.18.2.254") // unrelated
	time.Sleep(300 * time.Millisecond)
	h.seenByA("198.18.3.1:51820")
	out := run(t, "ip", "netns", "exec", h.a, wgdBin, "show", h.ifA, "endpoints")
	if !strings.Contains(out, "\t198.18.3.1:51820\n") {
		t.Fatalf("after an unrelated route change A sees B at %q, want 198.18.3.1:51820", strings.TrimSpace(out))
	}
}

// homingSetup is a peer A behind a router M and a peer B with two uplinks
// to M (198.18.2.1 preferred, 198.18.3.1), wgd on both; A reaches B at
// bAddr. With policy, B routes what it sends from 198.18.3.1 through the
// second uplink (table 100).
type homingSetup struct {
	t        *testing.T
	a, m, b  string
	ifA, ifB string
}

func newHomingSetup(t *testing.T, bAddr string, policy bool) *homingSetup {
	t.Helper()
	h := &homingSetup{t: t, a: newNetns(t, "rta"), m: newNetns(t, "rtm"), b: newNetns(t, "rtb")}
	a, m, b := h.a, h.m, h.b
	links := []struct{ ns1, if1, ns2, if2, addr1, addr2 string }{
		{a, "rtva", m, "rtma", "198.18.1.1/24", "198.18.1.254/24"},
		{b, "rtvb1", m, "rtmb1", "198.18.2.1/24", "198.18.2.254/24"},
		{b, "rtvb2", m, "rtmb2", "198.18.3.1/24", "198.18.3.254/24"},
	}
	for _, ns := range []string{a, m, b} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	for _, l := range links {
		run(t, "ip", "link", "add", l.if1, "netns", l.ns1, "type", "veth", "peer", "name", l.if2, "netns", l.ns2)
		run(t, "ip", "-n", l.ns1, "addr", "add", l.addr1, "dev", l.if1)
		run(t, "ip", "-n", l.ns2, "addr", "add", l.addr2, "dev", l.if2)
		run(t, "ip", "-n", l.ns1, "link", "set", l.if1, "up")
		run(t, "ip", "-n", l.ns2, "link", "set", l.if2, "up")
	}
	run(t, "ip", "netns", "exec", m, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	run(t, "ip", "-n", a, "route", "add", "198.18.0.0/15", "via", "198.18.1.254")
	run(t, "ip", "-n", b, "route", "add", "198.18.1.0/24", "via", "198.18.2.254", "metric", "10")
	run(t, "ip", "-n", b, "route", "add", "198.18.1.0/24", "via", "198.18.3.254", "metric", "20")
	if policy {
		run(t, "ip", "-n", b, "route", "add", "198.18.1.0/24", "via", "198.18.3.254", "table", "100")
		run(t, "ip", "-n", b, "rule", "add", "from", "198.18.3.1", "table", "100", "priority", "100")
	}

	dir := t.TempDir()
	h.ifA, h.ifB = fmt.Sprintf("wgra%d", os.Getpid()%100000), fmt.Sprintf("wgrb%d", os.Getpid()%100000)
	privA, pubA := genKeyPair(t)
	privB, pubB := genKeyPair(t)
	for _, k := range []struct{ name, priv string }{{"a.key", privA}, {"b.key", privB}} {
		if err := os.WriteFile(dir+"/"+k.name, []byte(k.priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "-n", a, "link", "del", h.ifA).Run()
		exec.Command("ip", "-n", b, "link", "del", h.ifB).Run()
	})
	run(t, "ip", "netns", "exec", a, wgdBin, h.ifA)
	run(t, "ip", "netns", "exec", b, wgdBin, h.ifB)
	run(t, "ip", "netns", "exec", a, wgdBin, "set", h.ifA, "private-key", dir+"/a.key", "listen-port", "51820",
		"peer", pubB, "endpoint", bAddr+":51820", "allowed-ips", "198.19.9.2/32")
	run(t, "ip", "netns", "exec", b, wgdBin, "set", h.ifB, "private-key", dir+"/b.key", "listen-port", "51820",
		"peer", pubA, "endpoint", "198.18.1.1:51820", "allowed-ips", "198.19.9.1/32")
	for _, s := range []struct{ ns, iface, addr string }{{a, h.ifA, "198.19.9.1/24"}, {b, h.ifB, "198.19.9.2/24"}} {
		run(t, "ip", "-n", s.ns, "addr", "add", s.addr, "dev", s.iface)
		run(t, "ip", "-n", s.ns, "link", "set", s.iface, "up")
	}
	// A's packets reach B at bAddr: B's sticky source.
	run(t, "ip", "netns", "exec", a, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.19.9.2")
	return h
}

// seenByA waits until A sees B's endpoint as want, B pinging A meanwhile.
func (h *homingSetup) seenByA(want string) {
	t := h.t
	t.Helper()
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		exec.Command("ip", "netns", "exec", h.b, "ping", "-c", "1", "-W", "1", "198.19.9.1").Run()
		got = run(t, "ip", "netns", "exec", h.a, wgdBin, "show", h.ifA, "endpoints")
		if strings.Contains(got, "\t"+want+"\n") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("A sees B at %q, want %s", strings.TrimSpace(got), want)
}

// TestE2EDaemonWithOnlyNetAdmin runs both daemons with only the
// capabilities the systemd unit grants (CAP_NET_ADMIN and
// CAP_NET_BIND_SERVICE, no new privileges), as a container with
// --cap-add NET_ADMIN has too. The link watcher's subscription used
// setns(2), which needs CAP_SYS_ADMIN: it failed, and the daemon took
// that for the interface's deletion and stopped at once.
func TestE2EDaemonWithOnlyNetAdmin(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	p := newNetnsPair(t)
	dir := t.TempDir()
	a := newTunnelSide(t, dir, p.a, fmt.Sprintf("wgca%d", os.Getpid()%100000))
	b := newTunnelSide(t, dir, p.b, fmt.Sprintf("wgcb%d", os.Getpid()%100000))
	for _, s := range []tunnelSide{a, b} {
		run(t, "ip", "netns", "exec", s.ns, "setpriv", "--inh-caps=-all", "--bounding-set=-all,+net_admin,+net_bind_service",
			"--no-new-privs", wgdBin, s.iface)
	}
	for i, s := range []tunnelSide{a, b} {
		other, n := b, i+1
		if i == 1 {
			other = a
		}
		run(t, "ip", "netns", "exec", s.ns, "wg", "set", s.iface, "private-key", s.key, "listen-port", "51820",
			"peer", other.pub, "endpoint", fmt.Sprintf("198.18.0.%d:51820", 3-n), "allowed-ips", fmt.Sprintf("198.19.0.%d/32", 3-n))
		run(t, "ip", "-n", s.ns, "addr", "add", fmt.Sprintf("198.19.0.%d/24", n), "dev", s.iface)
		run(t, "ip", "-n", s.ns, "link", "set", s.iface, "mtu", "1400", "up")
	}
	time.Sleep(300 * time.Millisecond) // the watcher has subscribed, or failed and stopped the daemon
	run(t, "ip", "netns", "exec", a.ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.19.0.2")
}
