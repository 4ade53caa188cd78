package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of `wgd up/down/reload` (wg-quick's job) and of wg-quick
// itself driving wgd as its userspace implementation. Each test makes its
// own namespaces, runs the built binary in them with configs in a temporary
// directory, and checks that nothing is left behind afterwards.

// quickSeq makes interface names unique within one test binary; the pid
// makes them unique between binaries, since /var/run/wireguard and /run/wgd
// are shared by all namespaces.
var quickSeq atomic.Int32

// quickIfaces returns two fresh interface names (at most 15 characters).
func quickIfaces() (a, b string) {
	n := quickSeq.Add(1)
	base := fmt.Sprintf("wq%d%d", os.Getpid()%100000, n)
	return base + "a", base + "b"
}

// quickSide is one end of a tunnel: its namespace, interface and keys.
type quickSide struct {
	ns, iface, priv, pub string
	n                    int // 1 for a, 2 for b: the last octet of its addresses
}

// quickSetup is a namespace pair with a key pair and an interface name for
// each side, and a directory for configs.
type quickSetup struct {
	*netnsPair
	a, b quickSide
	dir  string
}

func newQuickSetup(t *testing.T) *quickSetup {
	t.Helper()
	needRoot(t)
	p := newNetnsPair(t)
	ia, ib := quickIfaces()
	s := &quickSetup{netnsPair: p, dir: t.TempDir()}
	s.a = quickSide{ns: p.a, iface: ia, n: 1}
	s.b = quickSide{ns: p.b, iface: ib, n: 2}
	for _, side := range []*quickSide{&s.a, &s.b} {
		side.priv, side.pub = genKeyPair(t)
		t.Cleanup(func() { cleanupIface(side.ns, side.iface) })
	}
	return s
}

// genKeyPair returns a private key and its public key from wgd itself.
func genKeyPair(t *testing.T) (priv, pub string) {
	t.Helper()
	priv = strings.TrimSpace(run(t, wgdBin, "genkey"))
	r := runTool(t, priv, wgdBin, "pubkey")
	if r.code != 0 {
		t.Fatalf("pubkey: %+v", r)
	}
	return priv, strings.TrimSpace(r.stdout)
}

// cleanupIface is a best-effort teardown for a test that failed halfway:
// the namespaces go with the test, the shared socket and state file not.
func cleanupIface(ns, iface string) {
	exec.Command("ip", "-n", ns, "link", "del", iface).Run()
	os.Remove(filepath.Join("/var/run/wireguard", iface+".sock"))
	os.Remove(filepath.Join(stateDir, iface+".json"))
	os.Remove(filepath.Join(stateDir, iface+".lock"))
}

// conf writes a config for side (mode 0600) with its [Interface] lines,
// then one [Peer] for the other side with peerLines, and returns its path.
func (s *quickSetup) conf(t *testing.T, side quickSide, ifaceLines, peerLines string) string {
	t.Helper()
	other := s.b
	if side.n == 2 {
		other = s.a
	}
	text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51820\n%s\n[Peer]\nPublicKey = %s\nEndpoint = 198.18.0.%d:51820\n%s\n",
		side.priv, ifaceLines, other.pub, other.n, peerLines)
	return writeQuickConf(t, s.dir, side.iface, text)
}

func writeQuickConf(t *testing.T, dir, iface, text string) string {
	t.Helper()
	path := filepath.Join(dir, iface+".conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wgdIn runs the wgd binary inside namespace ns.
func wgdIn(t *testing.T, ns string, args ...string) result {
	t.Helper()
	return runTool(t, "", "ip", append([]string{"netns", "exec", ns, wgdBin}, args...)...)
}

func mustWgd(t *testing.T, ns string, args ...string) string {
	t.Helper()
	r := wgdIn(t, ns, args...)
	if r.code != 0 {
		t.Fatalf("wgd %s in %s: exit %d\n%s%s", strings.Join(args, " "), ns, r.code, r.stdout, r.stderr)
	}
	return r.stderr
}

func ipIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "-n", ns}, args...)...)
}

func contains(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: no %q in\n%s", what, w, text)
		}
	}
}

func lacks(t *testing.T, what, text string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(text, w) {
			t.Errorf("%s: unexpected %q in\n%s", what, w, text)
		}
	}
}

// defaultRules are what a fresh namespace has: a full tunnel's rules must
// be gone after down.
var defaultRules = map[string]string{
	"-4": "0: from all lookup local 32766: from all lookup main 32767: from all lookup default",
	"-6": "0: from all lookup local 32766: from all lookup main",
}

// assertGone checks that nothing of iface is left in ns or on the host: no
// link, no route or rule, no UAPI socket, no state file, no daemon.
func assertGone(t *testing.T, ns, iface string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns, "link", "show", iface).CombinedOutput(); err == nil {
		t.Errorf("link %s still exists:\n%s", iface, out)
	}
	routes := ipIn(t, ns, "-4", "route", "show", "table", "all") + ipIn(t, ns, "-6", "route", "show", "table", "all")
	lacks(t, "routes", routes, iface)
	for fam, want := range defaultRules {
		if got := ipIn(t, ns, fam, "rule"); strings.Join(strings.Fields(got), " ") != want {
			t.Errorf("ip %s rule left over:\n%s", fam, got)
		}
	}
	sock := filepath.Join("/var/run/wireguard", iface+".sock")
	if !waitFor(3*time.Second, func() bool { _, err := os.Stat(sock); return err != nil }) {
		t.Errorf("UAPI socket %s left behind", sock)
	}
	if _, err := os.Stat(filepath.Join(stateDir, iface+".json")); err == nil {
		t.Errorf("state file for %s left behind", iface)
	}
	if pids := strings.TrimSpace(run(t, "ip", "netns", "pids", ns)); pids != "" {
		t.Errorf("processes left in %s: %s", ns, pids)
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func ping(t *testing.T, ns string, args ...string) {
	t.Helper()
	// The first packet waits for a handshake. If both sides happen to
	// initiate at once, both become responders and the protocol recovers
	// with the next retry after REKEY_TIMEOUT (5 s + jitter), as the kernel
	// module does; allow for that once, then require the pings.
	warm := append([]string{"netns", "exec", ns, "ping", "-c", "1", "-w", "8"}, args...)
	if out, err := exec.Command("ip", warm...).CombinedOutput(); err != nil {
		t.Logf("first ping in %s got no reply within 8 s: %v\n%s", ns, err, out)
	}
	run(t, append([]string{"ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2"}, args...)...)
}

// TestE2EQuickUpDown brings both sides up with addresses (v4 and v6), an
// MTU, PostUp/PostDown hooks and a peer subnet route, pings across, and
// checks that down (twice) leaves nothing behind.
func TestE2EQuickUpDown(t *testing.T) {
	s := newQuickSetup(t)
	hooks := filepath.Join(s.dir, "hooks")
	var paths []string
	for _, side := range []quickSide{s.a, s.b} {
		other := 3 - side.n
		paths = append(paths, s.conf(t, side, fmt.Sprintf(
			"Address = 198.19.0.%d/32, fd00:2::%d/128\nMTU = 1380\nPostUp = echo up %%i ${ADDRESSES[*]} $MTU >> %s\nPostDown = echo down %%i ${ADDRESSES[*]} >> %s",
			side.n, side.n, hooks, hooks),
			fmt.Sprintf("AllowedIPs = 198.19.0.%d/32, 198.19.%d0.0/24, fd00:2::%d/128", other, other, other)))
	}
	for i, side := range []quickSide{s.a, s.b} {
		out := mustWgd(t, side.ns, "up", paths[i])
		contains(t, "up output", out, "[#] wgd "+side.iface, "[#] ip -4 address add 198.19.0", "[#] ip link set mtu 1380 up dev "+side.iface)
	}
	link := ipIn(t, s.a.ns, "link", "show", s.a.iface)
	contains(t, "link", link, "mtu 1380", "UP")
	contains(t, "routes", ipIn(t, s.a.ns, "-4", "route"), "198.19.20.0/24 dev "+s.a.iface, "198.19.0.2 dev "+s.a.iface)
	contains(t, "v6 routes", ipIn(t, s.a.ns, "-6", "route"), "fd00:2::2 dev "+s.a.iface)
	ping(t, s.a.ns, "198.19.0.2")
	ping(t, s.a.ns, "-6", "fd00:2::2")
	for i, side := range []quickSide{s.a, s.b} {
		out := mustWgd(t, side.ns, "down", paths[i])
		contains(t, "down output", out, "[#] ip link delete dev "+side.iface, "[#] echo down "+side.iface+" ${ADDRESSES[*]}")
		assertGone(t, side.ns, side.iface)
		// down is idempotent: a second one succeeds and runs no hook.
		out = mustWgd(t, side.ns, "down", paths[i])
		contains(t, "second down", out, "`"+side.iface+"' is not up")
	}
	data, _ := os.ReadFile(hooks)
	// The hooks read wg-quick's script variables as well.
	want := fmt.Sprintf("up %s 198.19.0.1/32 fd00:2::1/128 1380\nup %s 198.19.0.2/32 fd00:2::2/128 1380\ndown %s 198.19.0.1/32 fd00:2::1/128\ndown %s 198.19.0.2/32 fd00:2::2/128\n", s.a.iface, s.b.iface, s.a.iface, s.b.iface)
	if string(data) != want {
		t.Errorf("hooks ran as\n%s\nwant\n%s", data, want)
	}
}

// TestE2EQuickFailedPostUpRollsBack makes the last step of up fail and
// checks that everything before it is undone and the error names the step.
func TestE2EQuickFailedPostUpRollsBack(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24, fd00:2::1/64\nMTU = 1400\nPostUp = exit 3", "AllowedIPs = 0.0.0.0/0, 198.19.9.0/24")
	r := wgdIn(t, s.a.ns, "up", path)
	if r.code != 3 {
		t.Fatalf("up with a failing PostUp: exit %d, want the hook's 3:\n%s", r.code, r.stderr)
	}
	last := lastLine(r.stderr)
	contains(t, "error", last, "wgd: ", "PostUp hook `exit 3'", "exit status 3")
	contains(t, "undo lines", r.stderr, "[#] ip link delete dev "+s.a.iface)
	t.Logf("stderr:\n%s", r.stderr)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickUnresolvableEndpoint: an endpoint that does not resolve
// stops up before anything exists, with wg's reason and its "Configuration
// parsing error" for the file (it said "invalid set arguments").
func TestE2EQuickUnresolvableEndpoint(t *testing.T) {
	s := newQuickSetup(t)
	text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 198.19.0.1/24\n[Peer]\nPublicKey = %s\nEndpoint = [fe80::1%%nosuchif0]:51820\nAllowedIPs = 198.19.0.2/32\n", s.a.priv, s.b.pub)
	path := writeQuickConf(t, s.dir, s.a.iface, text)
	r := wgdIn(t, s.a.ns, "up", path)
	if r.code != 1 {
		t.Fatalf("up: exit %d, want 1\n%s", r.code, r.stderr)
	}
	contains(t, "up output", r.stderr, "Name or service not known: `[fe80::1%nosuchif0]:51820'\n", "wgd: "+path+": Configuration parsing error\n")
	assertGone(t, s.a.ns, s.a.iface)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestE2EQuickFullTunnel routes everything from namespace a through the
// tunnel (AllowedIPs = 0.0.0.0/0, a default route in the main table that
// the tunnel must override) while the tunnel's own UDP still reaches the
// peer over the underlay: wg-quick's fwmark and policy rules.
func TestE2EQuickFullTunnel(t *testing.T) {
	s := newQuickSetup(t)
	ipIn(t, s.a.ns, "route", "add", "default", "via", "198.18.0.2")
	ipIn(t, s.b.ns, "addr", "add", "198.19.1.1/32", "dev", "lo")
	pa := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 0.0.0.0/0")
	pb := s.conf(t, s.b, "Address = 198.19.0.2/24", "AllowedIPs = 198.19.0.1/32")
	out := mustWgd(t, s.a.ns, "up", pa)
	contains(t, "up output", out, "[#] wg set "+s.a.iface+" fwmark 51820", "[#] ip -4 rule add not fwmark 51820 table 51820",
		"[#] ip -4 rule add table main suppress_prefixlength 0", "[#] ip -4 route add 0.0.0.0/0 dev "+s.a.iface+" table 51820")
	mustWgd(t, s.b.ns, "up", pb)
	contains(t, "route to the far address", ipIn(t, s.a.ns, "route", "get", "198.19.1.1"), "dev "+s.a.iface)
	contains(t, "route of marked packets", ipIn(t, s.a.ns, "route", "get", "198.18.0.2", "mark", "51820"), "dev veth0")
	before := transferRx(t, s.a.ns, s.a.iface)
	ping(t, s.a.ns, "198.19.0.2")
	ping(t, s.a.ns, "198.19.1.1")
	if rx := transferRx(t, s.a.ns, s.a.iface); rx < before+6*84 {
		t.Errorf("tunnel received %d bytes for 6 pings (before %d)", rx-before, before)
	}
	hs := run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "latest-handshakes")
	if f := strings.Fields(hs); len(f) != 2 || f[1] == "0" {
		t.Errorf("no handshake: %q", hs)
	}
	// The daemon of a dies without cleaning up: its link goes with it, the
	// rules, the socket and the state file stay; down removes them.
	killDaemon(t, s.a.ns, s.a.iface)
	contains(t, "rules after kill", ipIn(t, s.a.ns, "rule"), "lookup 51820", "suppress_prefixlength 0")
	out = mustWgd(t, s.a.ns, "down", pa)
	contains(t, "down after kill", out, "[#] ip -4 rule delete table 51820", "[#] ip -4 rule delete table main suppress_prefixlength 0")
	mustWgd(t, s.b.ns, "down", pb)
	assertGone(t, s.a.ns, s.a.iface)
	assertGone(t, s.b.ns, s.b.iface)
	contains(t, "main table", ipIn(t, s.a.ns, "route"), "default via 198.18.0.2 dev veth0")
}

// killDaemon sends SIGKILL to the only process in ns (its daemon) and waits
// for the kernel to remove its link.
func killDaemon(t *testing.T, ns, iface string) {
	t.Helper()
	pids := strings.Fields(run(t, "ip", "netns", "pids", ns))
	if len(pids) != 1 {
		t.Fatalf("want one daemon in %s, have pids %v", ns, pids)
	}
	run(t, "kill", "-KILL", pids[0])
	if !waitFor(3*time.Second, func() bool { return exec.Command("ip", "-n", ns, "link", "show", iface).Run() != nil }) {
		t.Fatalf("link %s outlived its daemon", iface)
	}
	if _, err := os.Stat(filepath.Join("/var/run/wireguard", iface+".sock")); err != nil {
		t.Logf("note: the killed daemon's socket is already gone: %v", err)
	}
}

// transferRx is the bytes received from the only peer, from `wg show`.
func transferRx(t *testing.T, ns, iface string) int64 {
	t.Helper()
	f := strings.Fields(run(t, "ip", "netns", "exec", ns, "wg", "show", iface, "transfer"))
	if len(f) != 3 {
		t.Fatalf("wg show transfer: %q", f)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestE2EWgQuickUserspace runs the real wg-quick with wgd as its userspace
// implementation (the kernel module is not used: `ip link add type
// wireguard` must fail first, or the test would not test wgd), pings, and
// checks that wg-quick down stops the daemon and removes its socket.
func TestE2EWgQuickUserspace(t *testing.T) {
	s := newQuickSetup(t)
	if _, err := exec.LookPath("wg-quick"); err != nil {
		t.Skip("needs wg-quick (wireguard-tools)")
	}
	if exec.Command("ip", "-n", s.a.ns, "link", "add", "wqprobe", "type", "wireguard").Run() == nil {
		t.Skip("the wireguard kernel module is loaded: wg-quick would not use wgd")
	}
	var paths []string
	for _, side := range []quickSide{s.a, s.b} {
		paths = append(paths, s.conf(t, side, fmt.Sprintf("Address = 198.19.0.%d/24\nMTU = 1400", side.n),
			fmt.Sprintf("AllowedIPs = 198.19.0.%d/32", 3-side.n)))
	}
	wgQuick := func(ns string, args ...string) string {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "wg-quick"}, args...)...)
		cmd.Env = append(os.Environ(), "WG_QUICK_USERSPACE_IMPLEMENTATION="+wgdBin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wg-quick %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for i, side := range []quickSide{s.a, s.b} {
		out := wgQuick(side.ns, "up", paths[i])
		contains(t, "wg-quick up", out, "[#] "+wgdBin+" "+side.iface, "[#] wg setconf "+side.iface)
		lacks(t, "wg-quick up", out, "Missing WireGuard kernel module. Falling back to slow userspace implementation.\n[#] wireguard-go")
	}
	ping(t, s.a.ns, "198.19.0.2")
	contains(t, "wg show", run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface), "peer: "+s.b.pub, "latest handshake")
	for i, side := range []quickSide{s.a, s.b} {
		wgQuick(side.ns, "down", paths[i])
		assertGone(t, side.ns, side.iface)
	}
}

// TestE2EQuickReload adds a peer and an address with `wgd reload` while a
// ping runs across the tunnel, and checks that not a packet is lost and
// the session is kept.
func TestE2EQuickReload(t *testing.T) {
	s := newQuickSetup(t)
	pa := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	pb := s.conf(t, s.b, "Address = 198.19.0.2/24", "AllowedIPs = 198.19.0.1/32")
	mustWgd(t, s.a.ns, "up", pa)
	mustWgd(t, s.b.ns, "up", pb)
	ping(t, s.a.ns, "198.19.0.2")
	hs := run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "latest-handshakes")

	pinger := exec.Command("ip", "netns", "exec", s.a.ns, "ping", "-c", "30", "-i", "0.1", "-W", "1", "198.19.0.2")
	out := &strings.Builder{}
	pinger.Stdout, pinger.Stderr = out, out
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	_, newPub := genKeyPair(t)
	s.conf(t, s.a, "Address = 198.19.0.1/24, 198.19.7.1/32, fd00:2::1/64",
		fmt.Sprintf("AllowedIPs = 198.19.0.2/32\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.19.8.0/24", newPub))
	rl := mustWgd(t, s.a.ns, "reload", s.a.iface)
	contains(t, "reload output", rl, "[#] wg syncconf "+s.a.iface, "198.19.7.1/32", "198.19.8.0/24")
	if err := pinger.Wait(); err != nil {
		t.Errorf("ping during reload: %v\n%s", err, out)
	}
	contains(t, "ping", out.String(), " 0% packet loss")
	contains(t, "peers", run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "peers"), s.b.pub, newPub)
	contains(t, "addresses", ipIn(t, s.a.ns, "addr", "show", s.a.iface), "198.19.7.1/32", "fd00:2::1/64")
	contains(t, "routes", ipIn(t, s.a.ns, "route"), "198.19.8.0/24 dev "+s.a.iface)
	if hs2 := run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "latest-handshakes"); !strings.Contains(hs2, strings.TrimSpace(hs)) {
		t.Errorf("session not kept: handshakes before\n%s\nafter\n%s", hs, hs2)
	}
	mustWgd(t, s.a.ns, "down", s.a.iface)
	mustWgd(t, s.b.ns, "down", pb)
	assertGone(t, s.a.ns, s.a.iface)
	assertGone(t, s.b.ns, s.b.iface)
}

// TestE2EQuickReloadKeepsRandomPort: a file without ListenPort leaves the
// port to the kernel at up; reload keeps that port (syncconf would pick a
// new one each time, so a peer behind NAT lost this side until it sent
// again), and a ListenPort added to the file is applied.
func TestE2EQuickReloadKeepsRandomPort(t *testing.T) {
	s := newQuickSetup(t)
	text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 198.19.0.1/24\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.19.0.2/32\n", s.a.priv, s.b.pub)
	path := writeQuickConf(t, s.dir, s.a.iface, text)
	mustWgd(t, s.a.ns, "up", path)
	t.Cleanup(func() { cleanupIface(s.a.ns, s.a.iface) })
	port := func() string {
		return strings.TrimSpace(run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "listen-port"))
	}
	first := port()
	if first == "0" || first == "" {
		t.Fatalf("no port after up: %q", first)
	}
	for range 2 {
		mustWgd(t, s.a.ns, "reload", s.a.iface)
		if p := port(); p != first {
			t.Fatalf("reload moved the port from %s to %s", first, p)
		}
	}
	writeQuickConf(t, s.dir, s.a.iface, strings.Replace(text, "Address", "ListenPort = 51999\nAddress", 1))
	mustWgd(t, s.a.ns, "reload", s.a.iface)
	if p := port(); p != "51999" {
		t.Fatalf("ListenPort added to the file: port %s, want 51999", p)
	}
	mustWgd(t, s.a.ns, "down", s.a.iface)
}

// TestE2EQuickStaleRecord: an interface brought up by `wgd up` whose link
// was then deleted leaves its record behind; a bare daemon of the same name
// started later is another interface, and neither SIGHUP nor `wgd reload`
// applies the old config to it.
func TestE2EQuickStaleRecord(t *testing.T) {
	s := newQuickSetup(t)
	pa := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", pa)
	ipIn(t, s.a.ns, "link", "del", s.a.iface) // the daemon exits; the record stays
	if !waitFor(5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join("/var/run/wireguard", s.a.iface+".sock"))
		return err != nil
	}) {
		t.Fatal("daemon still running after its link was deleted")
	}
	if _, err := os.Stat(filepath.Join(stateDir, s.a.iface+".json")); err != nil {
		t.Skipf("no record left to test with: %v", err)
	}
	mustWgd(t, s.a.ns, s.a.iface) // a bare daemon, as wireguard-go's command line
	r := wgdIn(t, s.a.ns, "reload", s.a.iface)
	if r.code == 0 || !strings.Contains(r.stderr, "earlier or another interface") {
		t.Fatalf("reload of a bare daemon with a stale record: %+v", r)
	}
	run(t, "ip", "netns", "exec", s.a.ns, "pkill", "-HUP", "-f", wgdBin+" -f "+s.a.iface)
	time.Sleep(300 * time.Millisecond)
	if key := run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "private-key"); strings.TrimSpace(key) != "(none)" {
		t.Fatalf("SIGHUP applied the stale record's config: private key %q", key)
	}
	if peers := run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "peers"); strings.TrimSpace(peers) != "" {
		t.Fatalf("SIGHUP applied the stale record's peers: %q", peers)
	}
	ipIn(t, s.a.ns, "link", "del", s.a.iface)
}

// TestE2EQuickBadInput checks the failures a user meets first: each gives
// one clear line on stderr, a non-zero exit, and leaves nothing behind.
func TestE2EQuickBadInput(t *testing.T) {
	s := newQuickSetup(t)
	good := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	cases := []struct {
		name  string
		setup func(t *testing.T) string // returns the argument to up
		want  []string
	}{
		{"missing file", func(t *testing.T) string { return filepath.Join(s.dir, "nosuch0.conf") },
			[]string{"`" + filepath.Join(s.dir, "nosuch0.conf") + "' does not exist"}},
		{"config error", func(t *testing.T) string {
			return writeQuickConf(t, s.dir, s.a.iface+"x", "[Interface]\nPrivateKey = "+s.a.priv+"\nListenPort = eighty\n")
		}, []string{s.a.iface + "x.conf:3: ListenPort"}},
		{"bad name", func(t *testing.T) string { return writeQuickConf(t, s.dir, "much-too-long-name", "") },
			[]string{"must be a valid interface name"}},
		{"interface exists", func(t *testing.T) string {
			ipIn(t, s.a.ns, "link", "add", s.a.iface, "type", "veth", "peer", "name", s.a.iface+"p")
			t.Cleanup(func() { exec.Command("ip", "-n", s.a.ns, "link", "del", s.a.iface).Run() })
			return good
		}, []string{"`" + s.a.iface + "' already exists"}},
		{"socket in use", func(t *testing.T) string {
			ln := listenUnix(t, filepath.Join("/var/run/wireguard", s.a.iface+".sock"))
			t.Cleanup(func() { ln.Close() })
			return good
		}, []string{"UAPI socket for " + s.a.iface, "in use"}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			arg := c.setup(t)
			r := wgdIn(t, s.a.ns, "up", arg)
			if r.code != 1 {
				t.Fatalf("up: exit %d, want 1 (wg-quick's):\n%s", r.code, r.stderr)
			}
			t.Logf("stderr: %s", r.stderr)
			// In the foreground (the systemd unit) a configuration that a
			// restart cannot mend exits 78, which the unit does not restart.
			want := 1
			switch c.name {
			case "missing file", "config error", "bad name":
				want = exitConfig
			}
			if fg := wgdIn(t, s.a.ns, "up", "--foreground", arg); fg.code != want {
				t.Errorf("up --foreground: exit %d, want %d:\n%s", fg.code, want, fg.stderr)
			}
			last := lastLine(r.stderr)
			contains(t, "stderr", last, append([]string{"wgd: "}, c.want...)...)
			if n := strings.Count(r.stderr, "\nwgd: ") + strings.Count("\n"+r.stderr, "\nWarning"); n > 1 {
				t.Errorf("more than one error line:\n%s", r.stderr)
			}
			switch c.name {
			case "interface exists":
				// The interface that was there stays, untouched.
				contains(t, "existing link", ipIn(t, s.a.ns, "-d", "link", "show", s.a.iface), "veth")
			case "socket in use":
				// The other daemon keeps its socket; no TUN was made.
				if _, err := os.Stat(filepath.Join("/var/run/wireguard", s.a.iface+".sock")); err != nil {
					t.Errorf("the live socket was removed: %v", err)
				}
				if exec.Command("ip", "-n", s.a.ns, "link", "show", s.a.iface).Run() == nil {
					t.Errorf("link left behind")
				}
			default:
				assertGone(t, s.a.ns, s.a.iface)
			}
			if _, err := os.Stat(filepath.Join(stateDir, s.a.iface+".json")); err == nil {
				t.Errorf("state file left behind")
			}
		})
	}
	t.Run("no_permission", func(t *testing.T) {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("needs setpriv (util-linux)")
		}
		os.Chmod(s.dir, 0o755)
		r := runTool(t, "", "ip", "netns", "exec", s.a.ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", wgdBin, "up", good)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("up as nobody: exit %d, want one line:\n%s", r.code, r.stderr)
		}
		t.Logf("stderr: %s", r.stderr)
		contains(t, "stderr", r.stderr, "wgd: up "+s.a.iface+": needs CAP_NET_ADMIN")
		assertGone(t, s.a.ns, s.a.iface)
		// Readable config, still no capability: the same single line.
		os.Chown(good, 65534, 65534)
		r = runTool(t, "", "ip", "netns", "exec", s.a.ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", wgdBin, "down", good)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("down as nobody: exit %d, want one line:\n%s", r.code, r.stderr)
		}
		contains(t, "stderr", r.stderr, "wgd: down "+s.a.iface+": needs CAP_NET_ADMIN")
	})
}

// listenUnix binds a stream socket at path, standing in for another live
// daemon's UAPI socket.
func listenUnix(t *testing.T, path string) net.Listener {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// notifyListener is a stand-in for systemd's $NOTIFY_SOCKET: it collects
// the datagrams a service sends.
type notifyListener struct {
	path string
	msgs chan string
}

func newNotifyListener(t *testing.T) *notifyListener {
	t.Helper()
	dir, err := os.MkdirTemp("", "wgdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifyListener{path: filepath.Join(dir, "notify"), msgs: make(chan string, 64)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// next waits (bounded) for a message that starts with prefix, skipping
// watchdog pings, and returns it.
func (n *notifyListener) next(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %q", prefix)
			}
			if strings.HasPrefix(m, prefix) {
				return m
			}
			if m != "WATCHDOG=1" {
				t.Fatalf("got %q waiting for %q", m, prefix)
			}
		case <-timeout:
			t.Fatalf("no %q within 10s", prefix)
		}
	}
}

// startForeground starts `wgd up --foreground path` in namespace ns with
// the extra environment env; the returned channel gets its exit, and
// cleanup kills it if it is still running.
func startForeground(t *testing.T, ns, path string, env ...string) (*exec.Cmd, <-chan error, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, wgdBin, "up", "--foreground", path)
	cmd.Env = append(os.Environ(), env...)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd, done, stderr
}

// TestE2EQuickForegroundNotify runs `wgd up -f` as systemd would, with a
// test NOTIFY_SOCKET and a watchdog: READY=1 only once the interface is
// fully up (address, route, PostUp hook done), WATCHDOG=1 pings at half
// the interval, RELOADING=1 and READY=1 around a SIGHUP reload that
// applies a changed file, STOPPING=1 on SIGTERM, and nothing left after.
func TestE2EQuickForegroundNotify(t *testing.T) {
	s := newQuickSetup(t)
	marker := filepath.Join(s.dir, "postup-done")
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nPostUp = sleep 0.3; touch "+marker, "AllowedIPs = 198.19.0.2/32, 198.19.20.0/24")
	n := newNotifyListener(t)
	cmd, done, stderr := startForeground(t, s.a.ns, path, "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=400000")
	n.next(t, "READY=1")
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("READY=1 before PostUp finished")
	}
	contains(t, "routes at READY", ipIn(t, s.a.ns, "route"), "198.19.20.0/24 dev "+s.a.iface)
	start := time.Now()
	n.next(t, "WATCHDOG=1")
	n.next(t, "WATCHDOG=1")
	if d := time.Since(start); d > 600*time.Millisecond {
		t.Errorf("two watchdog pings took %v, want about 200ms each", d)
	}

	s.conf(t, s.a, "Address = 198.19.0.1/24, 198.19.7.1/32", "AllowedIPs = 198.19.0.2/32")
	cmd.Process.Signal(syscall.SIGHUP)
	contains(t, "reloading", n.next(t, "RELOADING=1"), "MONOTONIC_USEC=")
	n.next(t, "READY=1")
	contains(t, "addresses after SIGHUP", ipIn(t, s.a.ns, "addr", "show", s.a.iface), "198.19.7.1/32")
	lacks(t, "routes after SIGHUP", ipIn(t, s.a.ns, "route"), "198.19.20.0/24")

	// A slow reload (held up here by the interface lock) runs beside the
	// watchdog, which keeps its pace; it used to wait for the reload, and
	// a storm of SIGHUPs starved it seconds past WatchdogSec. The SIGHUPs
	// that come meanwhile are merged into one more reload, then READY.
	unlock, err := lockInterface(s.a.iface)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(20 * time.Millisecond)
	}
	lastPing, maxGap, lastState := time.Now(), time.Duration(0), ""
	release, giveUp := time.Now().Add(1500*time.Millisecond), time.Now().Add(15*time.Second)
	for (unlock != nil || !strings.HasPrefix(lastState, "READY=1")) && time.Now().Before(giveUp) {
		if unlock != nil && time.Now().After(release) {
			unlock()
			unlock = nil
		}
		select {
		case m := <-n.msgs:
			if m == "WATCHDOG=1" {
				maxGap = max(maxGap, time.Since(lastPing))
				lastPing = time.Now()
			} else {
				lastState = m
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	if unlock != nil {
		unlock()
	}
	if maxGap > 700*time.Millisecond {
		t.Errorf("during a slow reload the watchdog went %v without a ping (interval 200ms)", maxGap)
	}
	if !strings.HasPrefix(lastState, "READY=1") {
		t.Errorf("after the SIGHUPs the last state is %q, want READY=1", lastState)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	t.Logf("SIGHUP reload done at %v", time.Since(start))
	n.next(t, "STOPPING=1")
	t.Logf("STOPPING=1 at %v", time.Since(start))
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("wgd up -f: %v\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("wgd up -f did not exit after SIGTERM\n%s", stderr)
	}
	t.Logf("exited at %v", time.Since(start))
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickForegroundSaveOnStop: `wgd up -f` with SaveConfig = true
// (systemd's and docker's form) saves the running configuration on SIGTERM,
// runs PreDown (whose `wg` call reaches the daemon over its socket) and
// exits. It used to hang: the signal had already stopped the UAPI server
// that the save and the hooks talk to.
func TestE2EQuickForegroundSaveOnStop(t *testing.T) {
	s := newQuickSetup(t)
	marker := filepath.Join(s.dir, "predown-peers")
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nSaveConfig = true\nPreDown = wg show %i peers > "+marker,
		"AllowedIPs = 198.19.0.2/32")
	cmd, done, stderr := startForeground(t, s.a.ns, path)
	if !waitFor(10*time.Second, func() bool {
		return exec.Command("ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface).Run() == nil
	}) {
		t.Fatalf("interface never came up\n%s", stderr)
	}
	_, added := genKeyPair(t)
	run(t, "ip", "netns", "exec", s.a.ns, "wg", "set", s.a.iface, "peer", added, "allowed-ips", "198.19.9.0/24")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wgd up -f: %v\n%s", err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("wgd up -f with SaveConfig did not exit after SIGTERM\n%s", stderr)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "saved config", string(saved), added, "198.19.9.0/24")
	peers, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("PreDown did not run: %v", err)
	}
	contains(t, "peers seen by PreDown", string(peers), added)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickDownWarnsWorldAccessible: down reads the file again and, as
// wg-quick's down, warns when others may read it (as up does).
func TestE2EQuickDownWarnsWorldAccessible(t *testing.T) {
	s := newQuickSetup(t)
	dir := filepath.Join(s.dir, "open")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	open := filepath.Join(dir, filepath.Base(path))
	if err := os.Rename(path, open); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	warning := "Warning: `" + open + "' is world accessible"
	contains(t, "up", mustWgd(t, s.a.ns, "up", open), warning)
	contains(t, "down", mustWgd(t, s.a.ns, "down", open), warning)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestNotifyAddress checks how $NOTIFY_SOCKET is read: a path, an abstract
// name ("@..."), or nothing.
func TestNotifyAddress(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""}, {"/run/systemd/notify", "/run/systemd/notify"}, {"@abc", "\x00abc"},
	} {
		if got := newNotifier(func(string) string { return c.in }).addr; got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestWatchdogInterval checks WATCHDOG_USEC and WATCHDOG_PID handling.
func TestWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0}, {"1000000", "", 500 * time.Millisecond}, {"1000000", pid, 500 * time.Millisecond},
		{"1000000", "1", 0}, {"junk", "", 0}, {"0", "", 0},
	} {
		env := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.pid}
		if got := watchdogInterval(func(k string) string { return env[k] }, os.Getpid()); got != c.want {
			t.Errorf("usec %q pid %q: got %v, want %v", c.usec, c.pid, got, c.want)
		}
	}
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the shipped unit,
// as an instance (templates cannot be verified) whose ExecStart points at
// the test binary, and fails on any complaint, warnings included.
func TestSystemdUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile("../../dist/systemd/wgd@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify\n", "NotifyAccess=main\n", "ExecStart=/usr/local/bin/wgd up --foreground %i\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE\n",
		"ProtectSystem=strict\n", "DeviceAllow=/dev/net/tun rw\n", fmt.Sprintf("RestartPreventExitStatus=%d\n", exitConfig)} {
		contains(t, "unit", string(unit), want)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("needs systemd-analyze (systemd) to verify the unit")
	}
	path := filepath.Join(t.TempDir(), "wgd@wgtest0.service")
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/wgd", wgdBin)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestE2EQuickSaveConfig checks SaveConfig: a peer added at run time is in
// the file after down, which is replaced atomically with mode 0600.
func TestE2EQuickSaveConfig(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nSaveConfig = true", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", path)
	_, newPub := genKeyPair(t)
	run(t, "ip", "netns", "exec", s.a.ns, wgdBin, "set", s.a.iface, "peer", newPub,
		"allowed-ips", "198.19.0.77/32", "endpoint", "198.18.0.77:51820")
	out := mustWgd(t, s.a.ns, "down", path)
	contains(t, "down output", out, "[#] saving configuration to "+path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("saved config mode %v, want 0600", st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "saved config", string(data), "PublicKey = "+newPub, "AllowedIPs = 198.19.0.77/32",
		"Endpoint = 198.18.0.77:51820", "Address = 198.19.0.1/24", "SaveConfig = true", "PublicKey = "+s.b.pub)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickReloadFullTunnel: reloading a full tunnel whose file gives no
// FwMark keeps the mark up chose (the table its policy rules exempt). It
// used to be turned off by the syncconf step, so the tunnel's own datagrams
// to an endpoint behind the default gateway were routed back into the
// tunnel (a loop at 100% CPU) and later reloads stacked a second table's
// rules that down left behind. A reload to a split tunnel clears the mark
// with the rules.
func TestE2EQuickReloadFullTunnel(t *testing.T) {
	s := newQuickSetup(t)
	// a reaches b's endpoint only through its default route, which the
	// full tunnel's suppress_prefixlength rule hides from unmarked packets.
	ipIn(t, s.b.ns, "addr", "add", "198.18.100.2/32", "dev", "lo")
	ipIn(t, s.a.ns, "route", "add", "default", "via", "198.18.0.2")
	pb := s.conf(t, s.b, "Address = 198.19.0.2/24", "AllowedIPs = 198.19.0.0/24")
	mustWgd(t, s.b.ns, "up", pb)
	full := func(addrs, allowed string) string {
		return writeQuickConf(t, s.dir, s.a.iface, fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = %s\n\n[Peer]\nPublicKey = %s\nEndpoint = 198.18.100.2:51820\nAllowedIPs = %s\n",
			s.a.priv, addrs, s.b.pub, allowed))
	}
	pa := full("198.19.0.1/24", "0.0.0.0/0")
	mustWgd(t, s.a.ns, "up", pa)
	ping(t, s.a.ns, "198.19.0.2")
	mark := strings.TrimSpace(run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "fwmark"))
	if mark == "off" {
		t.Fatal("full tunnel up without a fwmark")
	}
	rules := ipIn(t, s.a.ns, "-4", "rule")
	mtu := func() string { return strings.Fields(ipIn(t, s.a.ns, "link", "show", s.a.iface))[4] }
	mtu0 := mtu()
	// The policy rules and the tunnel's routes stay in place through
	// reloads that change the addresses: taken away and back, as they
	// once were, traffic went around the tunnel in between.
	mon := exec.Command("ip", "-n", s.a.ns, "monitor", "rule", "route")
	var monOut lockedBuffer
	mon.Stdout = &monOut
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	stopMon := func() { mon.Process.Kill(); mon.Wait() }
	defer stopMon()
	time.Sleep(100 * time.Millisecond)
	for _, edit := range []string{"198.19.0.1/24, 198.19.7.1/32", "198.19.0.1/24", "198.19.0.1/24", "198.19.0.9/24"} {
		full(edit, "0.0.0.0/0")
		mustWgd(t, s.a.ns, "reload", s.a.iface)
		time.Sleep(100 * time.Millisecond)
		for _, line := range strings.Split(monOut.String(), "\n") {
			if strings.HasPrefix(line, "Deleted") && (strings.Contains(line, "lookup ") || strings.Contains(line, "default dev")) {
				t.Errorf("reload (Address = %s) took away %q", edit, line)
			}
		}
		// The automatic MTU stays as up chose it; it was looked up again
		// through the tunnel's own route and lost 80 on every reload.
		if got := mtu(); got != mtu0 {
			t.Fatalf("after reload (Address = %s) the MTU is %s, was %s", edit, got, mtu0)
		}
		if got := strings.TrimSpace(run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "fwmark")); got != mark {
			t.Fatalf("after reload (Address = %s) the fwmark is %s, was %s", edit, got, mark)
		}
		if got := ipIn(t, s.a.ns, "-4", "rule"); got != rules {
			t.Errorf("after reload (Address = %s) the rules are\n%swere\n%s", edit, got, rules)
		}
		run(t, "ip", "netns", "exec", s.a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.19.0.2")
	}
	stopMon()
	full("198.19.0.1/24", "198.19.0.0/24")
	mustWgd(t, s.a.ns, "reload", s.a.iface)
	if got := strings.TrimSpace(run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", s.a.iface, "fwmark")); got != "off" {
		t.Errorf("split tunnel after reload keeps fwmark %s", got)
	}
	lacks(t, "rules of a split tunnel", ipIn(t, s.a.ns, "-4", "rule"), "suppress_prefixlength", "lookup "+mark)
	run(t, "ip", "netns", "exec", s.a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.19.0.2")
	mustWgd(t, s.a.ns, "down", s.a.iface)
	mustWgd(t, s.b.ns, "down", pb)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickUpInterruptedUndoes: SIGTERM or SIGINT to `wgd up` halfway
// (here during a PostUp hook of a full tunnel) undoes what it did, as
// wg-quick's trap does; it used to die there and leave the daemon,
// addresses, policy rules and nftables tables behind with no record for
// down. SIGHUP during up is ignored rather than fatal.
func TestE2EQuickUpInterruptedUndoes(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s := newQuickSetup(t)
			pa := s.conf(t, s.a, "Address = 198.19.0.1/24\nPostUp = sleep 5", "AllowedIPs = 0.0.0.0/0")
			cmd := exec.Command("ip", "netns", "exec", s.a.ns, wgdBin, "up", pa)
			var out lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if !waitFor(10*time.Second, func() bool { return strings.Contains(out.String(), "[#] sleep 5") }) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("up never reached PostUp:\n%s", out.String())
			}
			cmd.Process.Signal(syscall.SIGHUP) // ignored
			time.Sleep(100 * time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			if err == nil {
				t.Errorf("up exited 0 after %v", sig)
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() < 0 {
				t.Errorf("up died of a signal (%v) instead of undoing:\n%s", err, out.String())
			}
			assertGone(t, s.a.ns, s.a.iface)
			if nft, err := exec.Command("ip", "netns", "exec", s.a.ns, "nft", "list", "tables").CombinedOutput(); err == nil && strings.Contains(string(nft), s.a.iface) {
				t.Errorf("nftables table left behind:\n%s", nft)
			}
		})
	}
}

// lockedBuffer collects a subprocess's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestE2EQuickForegroundTakenDown: the interface of `wgd up -f` (the
// systemd unit, the container) taken down from outside. `wgd down` returns
// at once and the up -f process exits with it: both used to wait on each
// other, down for the daemon's socket to go quiet and the daemon's own
// teardown for the lock down held (6 s for down, 9 s for up -f). After `ip
// link del` of a full tunnel, up -f itself removes the policy rules and
// firewall tables its up added.
func TestE2EQuickForegroundTakenDown(t *testing.T) {
	for _, how := range []string{"wgd down", "ip link del"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
			s := newQuickSetup(t)
			path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 0.0.0.0/0")
			_, done, stderr := startForeground(t, s.a.ns, path)
			if !waitFor(10*time.Second, func() bool {
				return strings.Contains(ipIn(t, s.a.ns, "-4", "rule"), "suppress_prefixlength")
			}) {
				t.Fatal("the full tunnel never came up")
			}
			start := time.Now()
			if how == "wgd down" {
				mustWgd(t, s.a.ns, "down", path)
			} else {
				ipIn(t, s.a.ns, "link", "del", s.a.iface)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s took %v", how, took)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("wgd up -f: %v\n%s", err, stderr)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("wgd up -f still running 3 s after %s", how)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("wgd up -f exited %v after %s", took, how)
			}
			lacks(t, "up -f output", stderr.String(), "nothing to take down")
			assertGone(t, s.a.ns, s.a.iface)
		})
	}
}

// TestE2EQuickUpSubcommandName: an interface named like a subcommand
// ("version") comes up with `wgd up`, whose daemon is `wgd -f -- version`;
// it was started as `wgd -f version`, which printed the version and exited.
func TestE2EQuickUpSubcommandName(t *testing.T) {
	s := newQuickSetup(t)
	s.a.iface = "version"
	t.Cleanup(func() { cleanupIface(s.a.ns, "version") })
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", path)
	if out := run(t, "ip", "netns", "exec", s.a.ns, "wg", "show", "version", "listen-port"); strings.TrimSpace(out) != "51820" {
		t.Errorf("wg show version listen-port: %q", out)
	}
	mustWgd(t, s.a.ns, "down", path)
	assertGone(t, s.a.ns, "version")
}

// TestE2EQuickDownMistypedName: down of a name with no file, no link and no
// record fails as wg-quick's (exit 1, "does not exist") instead of warning
// and exiting 0, so `wgd down wg0 || alert` notices a misspelt name; a file
// whose interface is not up is still a warning and exit 0 (idempotent).
func TestE2EQuickDownMistypedName(t *testing.T) {
	s := newQuickSetup(t)
	missing := filepath.Join(s.dir, s.a.iface+"x.conf")
	r := wgdIn(t, s.a.ns, "down", missing)
	if r.code != 1 || !strings.Contains(r.stderr, "`"+missing+"' does not exist") {
		t.Errorf("down of a missing file: exit %d\n%s", r.code, r.stderr)
	}
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	r = wgdIn(t, s.a.ns, "down", path)
	if r.code != 0 || !strings.Contains(r.stderr, "is not up: nothing to take down") {
		t.Errorf("down of an interface that is not up: exit %d\n%s", r.code, r.stderr)
	}
}

// TestE2EPacketsOverLinkMTU: a route whose MTU is above the tunnel's makes
// the kernel hand the TUN packets larger than the link MTU. They go
// through, as with wireguard-go (the outer datagram is fragmented): those
// of 1441-1456 bytes were dropped as "no key" (no room for the tag), larger
// ones dropped with no counter. Without offloads a packet larger than the
// read buffer cannot be read whole: it is dropped and counted as a TUN read
// error.
func TestE2EPacketsOverLinkMTU(t *testing.T) {
	for _, offload := range []bool{true, false} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			s := newQuickSetup(t)
			env := []string{}
			if !offload {
				env = append(env, "WGD_NO_OFFLOAD=1")
			}
			up := func(side quickSide, path string) {
				t.Helper()
				r := runTool(t, "", "ip", append(append([]string{"netns", "exec", side.ns, "env"}, env...), wgdBin, "up", path)...)
				if r.code != 0 {
					t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
				}
			}
			up(s.a, s.conf(t, s.a, "Address = 198.19.0.1/24\nMTU = 1420", "AllowedIPs = 198.19.0.2/32"))
			up(s.b, s.conf(t, s.b, "Address = 198.19.0.2/24\nMTU = 1420", "AllowedIPs = 198.19.0.1/32"))
			for _, side := range []quickSide{s.a, s.b} {
				other := 3 - side.n
				ipIn(t, side.ns, "route", "replace", fmt.Sprintf("198.19.0.%d/32", other), "dev", side.iface, "mtu", "1500")
			}
			ping(t, s.a.ns, "198.19.0.2")
			// 1448 and 1500-byte packets, DF set.
			ping(t, s.a.ns, "-M", "do", "-s", "1420", "198.19.0.2")
			if offload {
				ping(t, s.a.ns, "-M", "do", "-s", "1472", "198.19.0.2")
				return
			}
			r := runTool(t, "", "ip", "netns", "exec", s.a.ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1472", "198.19.0.2")
			if r.code == 0 {
				t.Fatalf("a 1500-byte packet passed without offloads: its read buffer cannot hold it whole")
			}
			js := wgdIn(t, s.a.ns, "show", "--json", s.a.iface)
			contains(t, "counters", js.stdout, `"tun_read_errors": 2`, `"no_key": 0`)
		})
	}
}
