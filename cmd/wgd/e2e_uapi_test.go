package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgdvpn/wgd/noise"
)

// These tests run the real wg(8) and wgctrl-go against running wgd daemons
// (issue 6): the UAPI served by the engine itself, not by a fake device.

// uapiPair is two wgd daemons in namespaces a and b with a tunnel between
// them (198.19.0.1 in a, 198.19.0.2 in b) and a completed handshake.
type uapiPair struct {
	ns         *netnsPair
	ifA, ifB   string
	pubA, pubB string
	dir        string
}

func startUAPIPair(t *testing.T) *uapiPair {
	t.Helper()
	needRoot(t)
	u := &uapiPair{ns: newNetnsPair(t), dir: t.TempDir()}
	u.ifA = fmt.Sprintf("wgua%d", os.Getpid()%100000)
	u.ifB = fmt.Sprintf("wgub%d", os.Getpid()%100000)
	privA, pubA := genKeyPair(t)
	privB, pubB := genKeyPair(t)
	u.pubA, u.pubB = pubA, pubB
	sides := []struct{ ns, dev, priv, peer string }{
		{u.ns.a, u.ifA, privA, pubB},
		{u.ns.b, u.ifB, privB, pubA},
	}
	for i, s := range sides {
		other := 2 - i
		run(t, "ip", "netns", "exec", s.ns, wgdBin, s.dev)
		t.Cleanup(func() { cleanupIface(s.ns, s.dev) })
		key := u.file(t, fmt.Sprintf("key%d", i), s.priv+"\n")
		run(t, "ip", "netns", "exec", s.ns, "wg", "set", s.dev, "private-key", key, "listen-port", "51820",
			"peer", s.peer, "endpoint", fmt.Sprintf("198.18.0.%d:51820", other),
			"allowed-ips", fmt.Sprintf("198.19.0.%d/32,fd00:2::%d/128", other, other))
		ipIn(t, s.ns, "addr", "add", fmt.Sprintf("198.19.0.%d/24", i+1), "dev", s.dev)
		ipIn(t, s.ns, "link", "set", s.dev, "up")
	}
	u.ping(t)
	return u
}

func (u *uapiPair) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(u.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// wg runs wg(8) in namespace a, where the daemon under test lives.
func (u *uapiPair) wg(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", u.ns.a, "wg"}, args...)...)
}

// ping proves the tunnel still carries traffic (and makes a handshake).
func (u *uapiPair) ping(t *testing.T) {
	t.Helper()
	run(t, "ip", "netns", "exec", u.ns.a, "ping", "-c", "2", "-i", "0.2", "-W", "3", "198.19.0.2")
}

// uapiKey is a key pair made in process, for peers that never answer.
func uapiKey(t *testing.T) (priv, pub string) {
	t.Helper()
	k, err := noise.NewPrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k.String(), k.PublicKey().String()
}

// peerLine returns the `wg show IF dump` line of peer pub, without the
// public key, or "" when there is none.
func peerLine(dump, pub string) string {
	for _, l := range strings.Split(dump, "\n") {
		if rest, ok := strings.CutPrefix(l, pub+"\t"); ok {
			return rest
		}
	}
	return ""
}

func TestE2EUAPIRealDaemon(t *testing.T) {
	u := startUAPIPair(t)
	t.Run("handshake fields", u.testHandshakeFields)
	t.Run("set", u.testSet)
	t.Run("conf files", u.testConfFiles)
	t.Run("bad line changes nothing", u.testBadLine)
	t.Run("wgctrl", u.testWgctrl)
}

// testHandshakeFields: after a real handshake and a ping, wg reports the
// handshake time and both byte counters, in every form it has.
func (u *uapiPair) testHandshakeFields(t *testing.T) {
	now := time.Now().Unix()
	f := strings.Fields(peerLine(u.wg(t, "show", u.ifA, "latest-handshakes"), u.pubB))
	if len(f) != 1 {
		t.Fatalf("latest-handshakes: %v", f)
	}
	if hs, _ := strconv.ParseInt(f[0], 10, 64); hs < now-60 || hs > now+1 {
		t.Fatalf("latest handshake %d, now %d", hs, now)
	}
	f = strings.Fields(peerLine(u.wg(t, "show", u.ifA, "transfer"), u.pubB))
	if len(f) != 2 || f[0] == "0" || f[1] == "0" {
		t.Fatalf("transfer (rx tx): %v", f)
	}
	pretty := u.wg(t, "show", u.ifA)
	contains(t, "wg show", pretty, "latest handshake: ", "transfer: ", "endpoint: 198.18.0.2:51820")
	all := u.wg(t, "show", "all", "dump")
	var line []string
	for _, l := range strings.Split(all, "\n") {
		if strings.HasPrefix(l, u.ifA+"\t"+u.pubB+"\t") {
			line = strings.Split(l, "\t")
		}
	}
	// ifname, public key, psk, endpoint, allowed ips, handshake, rx, tx, keepalive
	if len(line) != 9 || line[2] != "(none)" || line[3] != "198.18.0.2:51820" ||
		line[4] != "198.19.0.2/32,fd00:2::2/128" || line[5] == "0" || line[6] == "0" || line[7] == "0" || line[8] != "off" {
		t.Fatalf("wg show all dump line for %s: %q\n%s", u.ifA, line, all)
	}
}

// testSet: wg set adds, updates and removes peers and allowed IPs, an
// allowed IP given to another peer moves, and the "-" form of the UAPI
// removes one allowed IP; the real peer's session survives all of it.
func (u *uapiPair) testSet(t *testing.T) {
	_, p1 := uapiKey(t)
	_, p2 := uapiKey(t)
	psk, _ := uapiKey(t)
	u.wg(t, "set", u.ifA, "peer", p1, "endpoint", "198.18.0.77:51820", "allowed-ips", "198.18.10.0/24,fd00:10::/64")
	if got := peerLine(u.wg(t, "show", u.ifA, "dump"), p1); got != "(none)\t198.18.0.77:51820\t198.18.10.0/24,fd00:10::/64\t0\t0\t0\toff" {
		t.Fatalf("after add: %q", got)
	}
	u.wg(t, "set", u.ifA, "peer", p1, "allowed-ips", "198.18.11.0/24", "preshared-key", u.file(t, "psk", psk+"\n"),
		"peer", p2, "persistent-keepalive", "25", "allowed-ips", "fd00:20::/64")
	dump := u.wg(t, "show", u.ifA, "dump")
	if got := peerLine(dump, p1); got != psk+"\t198.18.0.77:51820\t198.18.11.0/24\t0\t0\t0\toff" {
		t.Fatalf("p1 after update: %q", got)
	}
	if got := peerLine(dump, p2); got != "(none)\t(none)\tfd00:20::/64\t0\t0\t0\t25" {
		t.Fatalf("p2 after add: %q", got)
	}
	u.wg(t, "set", u.ifA, "peer", p2, "allowed-ips", "fd00:20::/64,198.18.11.0/24")
	if got := u.wg(t, "show", u.ifA, "allowed-ips"); !strings.Contains(got, p1+"\t(none)\n") ||
		!strings.Contains(got, p2+"\tfd00:20::/64 198.18.11.0/24\n") {
		t.Fatalf("allowed IP did not move:\n%s", got)
	}
	u.wg(t, "set", u.ifA, "peer", p1, "remove")
	if got := u.wg(t, "show", u.ifA, "peers"); got != u.pubB+"\n"+p2+"\n" {
		t.Fatalf("peers after remove: %q", got)
	}
	u.rawSet(t, "public_key="+hexKey(t, p2)+"\nallowed_ip=-fd00:20::/64\n", "errno=0")
	if got := peerLine(u.wg(t, "show", u.ifA, "allowed-ips"), p2); got != "198.18.11.0/24" {
		t.Fatalf("after - removal: %q", got)
	}
	u.wg(t, "set", u.ifA, "peer", p2, "remove")
	u.ping(t)
}

func hexKey(t *testing.T, b64 string) string {
	t.Helper()
	k, err := noise.ParsePublicKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	return k.Hex()
}

// rawSet sends one set=1 request with body to daemon a's socket and
// checks the errno line of the reply.
func (u *uapiPair) rawSet(t *testing.T, body, wantErrno string) {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join("/var/run/wireguard", u.ifA+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "set="+"1\n"+body+"\n"); err != nil {
		t.Fatal(err)
	}
	want := wantErrno + "\n\n"
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != want {
		t.Fatalf("reply %q (%v), want %q", buf, err, want)
	}
}

// testConfFiles: setconf, addconf, syncconf and showconf round trips on
// the real daemon; syncconf keeps the live peer's session.
func (u *uapiPair) testConfFiles(t *testing.T) {
	base := u.wg(t, "showconf", u.ifA)
	if !strings.Contains(base, "PublicKey = "+u.pubB+"\n") || !strings.Contains(base, "ListenPort = 51820\n") {
		t.Fatalf("showconf:\n%s", base)
	}
	_, p3 := uapiKey(t)
	psk, _ := uapiKey(t)
	extra := "\n[Peer]\nPublicKey = " + p3 + "\nPresharedKey = " + psk +
		"\nAllowedIPs = 198.18.30.0/24, fd00:30::/64\nEndpoint = [fd00:1::99]:51820\n"
	u.wg(t, "setconf", u.ifA, u.file(t, "a.conf", base+extra))
	shown := u.wg(t, "showconf", u.ifA)
	if shown != base+extra {
		t.Fatalf("showconf after setconf:\n%s\nwant:\n%s", shown, base+extra)
	}
	u.wg(t, "setconf", u.ifA, u.file(t, "b.conf", shown))
	if again := u.wg(t, "showconf", u.ifA); again != shown {
		t.Fatalf("setconf(showconf) changed the device:\n%s", again)
	}
	_, p4 := uapiKey(t)
	u.wg(t, "addconf", u.ifA, u.file(t, "c.conf", "[Peer]\nPublicKey = "+p4+"\nAllowedIPs = 198.18.40.0/24\n"))
	if got := u.wg(t, "show", u.ifA, "peers"); got != u.pubB+"\n"+p3+"\n"+p4+"\n" {
		t.Fatalf("peers after addconf: %q", got)
	}
	hsBefore := peerLine(u.wg(t, "show", u.ifA, "latest-handshakes"), u.pubB)
	u.wg(t, "syncconf", u.ifA, u.file(t, "d.conf", base))
	if got := u.wg(t, "showconf", u.ifA); got != base {
		t.Fatalf("showconf after syncconf:\n%s\nwant:\n%s", got, base)
	}
	if hs := peerLine(u.wg(t, "show", u.ifA, "latest-handshakes"), u.pubB); hs != hsBefore {
		t.Errorf("syncconf disturbed the live session: handshake %s, was %s", hs, hsBefore)
	}
	u.ping(t)
}

// testBadLine: a set=1 whose middle line is invalid is refused with EINVAL
// and leaves the daemon exactly as it was, as wg showconf and dump see it.
func (u *uapiPair) testBadLine(t *testing.T) {
	beforeConf := u.wg(t, "showconf", u.ifA)
	beforeDump := u.wg(t, "show", u.ifA, "dump")
	_, p5 := uapiKey(t)
	body := "listen_port=51999\nfwmark=7\nreplace_peers=true\n" +
		"public_key=" + hexKey(t, u.pubB) + "\nreplace_allowed_ips=true\nallowed_ip=198.18.50.0/24\n" +
		"public_key=" + hexKey(t, p5) + "\nallowed_ip=198.18.51.0/24\npersistent_keepalive_interval=x\n" +
		"allowed_ip=198.18.52.0/24\n"
	u.rawSet(t, body, "errno=-22")
	if got := u.wg(t, "showconf", u.ifA); got != beforeConf {
		t.Fatalf("showconf changed:\n%s\nwas:\n%s", got, beforeConf)
	}
	// The transfer counters may move (the session is live); nothing else.
	strip := func(d string) string {
		var out []string
		for _, l := range strings.Split(d, "\n") {
			if f := strings.Split(l, "\t"); len(f) == 8 {
				l = strings.Join(append(f[:5:5], f[7]), "\t")
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	if got := u.wg(t, "show", u.ifA, "dump"); strip(got) != strip(beforeDump) {
		t.Fatalf("dump changed:\n%s\nwas:\n%s", got, beforeDump)
	}
	u.ping(t)
}

// testWgctrl: wgctrl-go reads the live device (handshake and counters
// included) and configures it.
func (u *uapiPair) testWgctrl(t *testing.T) {
	c, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.Device(u.ifA)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != wgtypes.Userspace || d.PublicKey.String() != u.pubA || d.ListenPort != 51820 || len(d.Peers) != 1 {
		t.Fatalf("device %+v", d)
	}
	if p := d.Peers[0]; p.PublicKey.String() != u.pubB || p.LastHandshakeTime.IsZero() || p.ReceiveBytes == 0 ||
		p.TransmitBytes == 0 || p.Endpoint.String() != "198.18.0.2:51820" || len(p.AllowedIPs) != 2 {
		t.Fatalf("peer %+v", p)
	}
	k, _ := wgtypes.GeneratePrivateKey()
	psk, _ := wgtypes.GenerateKey()
	ka := 25 * time.Second
	_, n1, _ := net.ParseCIDR("198.18.60.0/24")
	_, n2, _ := net.ParseCIDR("fd00:60::/64")
	err = c.ConfigureDevice(u.ifA, wgtypes.Config{Peers: []wgtypes.PeerConfig{{
		PublicKey: k.PublicKey(), PresharedKey: &psk, PersistentKeepaliveInterval: &ka,
		ReplaceAllowedIPs: true, AllowedIPs: []net.IPNet{*n1, *n2},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = c.Device(u.ifA); err != nil || len(d.Peers) != 2 {
		t.Fatalf("after add: %+v %v", d, err)
	}
	if p := d.Peers[1]; p.PublicKey != k.PublicKey() || p.PresharedKey != psk || p.PersistentKeepaliveInterval != ka ||
		len(p.AllowedIPs) != 2 || p.AllowedIPs[0].String() != "198.18.60.0/24" || p.AllowedIPs[1].String() != "fd00:60::/64" {
		t.Fatalf("added peer %+v", p)
	}
	err = c.ConfigureDevice(u.ifA, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: k.PublicKey(), Remove: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = c.Device(u.ifA); err != nil || len(d.Peers) != 1 {
		t.Fatalf("after remove: %+v %v", d, err)
	}
	u.ping(t)
}

// wireguardGo finds the pinned wireguard-go binary the Makefile builds.
func wireguardGo(t *testing.T) string {
	t.Helper()
	p := os.Getenv("WIREGUARD_GO")
	if p == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			t.Skipf("no WIREGUARD_GO and no go env GOPATH: %v", err)
		}
		p = filepath.Join(strings.TrimSpace(string(out)), "bin", "wireguard")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("wireguard-go binary not found at %s (make tools builds it)", p)
	}
	return p
}

// compareConf is a configuration that exercises the orderings wg shows:
// v4 and v6 endpoints, pre-shared keys, keepalive (only on peers without an
// endpoint, so nothing is ever sent), several allowed IPs per peer, one
// listed twice (it moves to the end), one with host bits set, and a /24
// that several peers claim (the last one keeps it).
func compareConf(t *testing.T, n int) (conf string, pubs []string) {
	t.Helper()
	priv, _ := uapiKey(t)
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nFwMark = 0x1234\n", priv)
	for i := range n {
		_, pub := uapiKey(t)
		pubs = append(pubs, pub)
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\n", pub)
		if i%4 == 0 {
			psk, _ := uapiKey(t)
			fmt.Fprintf(&b, "PresharedKey = %s\n", psk)
		}
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "Endpoint = 198.18.1.%d:51820\n", i+1)
		case 1:
			fmt.Fprintf(&b, "Endpoint = [fd00:9::%x]:%d\n", i+1, 1000+i)
		default:
			if i%2 == 0 {
				b.WriteString("PersistentKeepalive = 25\n")
			}
		}
		ips := fmt.Sprintf("198.18.100.%d/32, fd00:100::%x/128, 198.18.150.%d/32, 198.18.100.%d/32", i, i, i, i)
		if i%5 == 0 {
			ips += ", 198.18.200.0/24, fd00:200::/64"
		}
		if i%7 == 3 {
			ips += fmt.Sprintf(", 198.18.%d.77/24", 160+i)
		}
		fmt.Fprintf(&b, "AllowedIPs = %s\n", ips)
	}
	return b.String(), pubs
}

// normalizeDump drops from `wg show IF dump` what the issue allows to
// differ: the device's keys and port and the handshake times. Peer lines
// are sorted by public key, because wireguard-go lists peers in Go map
// order, which is random; wgd's order is checked separately.
func normalizeDump(dump string) []string {
	lines := strings.Split(strings.TrimSuffix(dump, "\n"), "\n")
	out := []string{"fwmark " + lines[0][strings.LastIndexByte(lines[0], '\t')+1:]}
	var peers []string
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) == 8 {
			f[4] = "-"
		}
		peers = append(peers, strings.Join(f, "\t"))
	}
	slices.Sort(peers)
	return append(out, peers...)
}

// TestE2EDumpMatchesWireguardGo configures wgd and wireguard-go identically
// with wg setconf and then the same wg set changes, and compares their
// `wg show IF dump`, normalized as the issue allows.
func TestE2EDumpMatchesWireguardGo(t *testing.T) {
	needRoot(t)
	wggo := wireguardGo(t)
	ns := fmt.Sprintf("wgdcmp-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		for _, pid := range strings.Fields(run(t, "ip", "netns", "pids", ns)) {
			exec.Command("kill", pid).Run()
		}
		exec.Command("ip", "netns", "del", ns).Run()
	})
	ifW, ifG := fmt.Sprintf("wgcw%d", os.Getpid()%100000), fmt.Sprintf("wgcg%d", os.Getpid()%100000)
	run(t, "ip", "netns", "exec", ns, wgdBin, ifW)
	t.Cleanup(func() { cleanupIface(ns, ifW) })
	run(t, "ip", "netns", "exec", ns, wggo, ifG)
	t.Cleanup(func() { cleanupIface(ns, ifG) })
	conf, pubs := compareConf(t, 24)
	path := filepath.Join(t.TempDir(), "cmp.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	wgIn := func(args ...string) string {
		return run(t, append([]string{"ip", "netns", "exec", ns, "wg"}, args...)...)
	}
	compare := func(step string) {
		t.Helper()
		w, g := wgIn("show", ifW, "dump"), wgIn("show", ifG, "dump")
		if nw, ng := normalizeDump(w), normalizeDump(g); !slices.Equal(nw, ng) {
			t.Fatalf("%s: dumps differ\nwgd:\n%s\nwireguard-go:\n%s", step, strings.Join(nw, "\n"), strings.Join(ng, "\n"))
		}
	}
	for _, ifc := range []string{ifW, ifG} {
		wgIn("setconf", ifc, path)
	}
	compare("setconf")
	if got := wgIn("show", ifW, "peers"); got != strings.Join(pubs, "\n")+"\n" {
		t.Errorf("wgd does not list peers in the order they were added:\n%s", got)
	}
	for _, ifc := range []string{ifW, ifG} {
		wgIn("set", ifc, "listen-port", "0", "fwmark", "off",
			"peer", pubs[3], "remove",
			"peer", pubs[4], "allowed-ips", "198.18.200.0/24,fd00:100::4/128,198.18.250.0/24",
			"peer", pubs[6], "endpoint", "[fd00:9::66]:7", "persistent-keepalive", "off",
			"peer", pubs[7], "allowed-ips", "fd00:200::/64,198.18.150.8/32")
		wgIn("addconf", ifc, path)
	}
	compare("set and addconf")
}
