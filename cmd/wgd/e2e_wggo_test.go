package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2EInteropWireguardGoBinary runs wgd in one namespace and the
// wireguard-go binary in the other, both configured with the real wg, and
// checks pings and TCP transfers with checksums both ways: first
// wireguard-go initiates, then, after wgd's side is restarted with its TUN
// and UDP offloads off (WGD_NO_OFFLOAD=1), wgd does. wireguard-go keeps
// its offloads, so wgd's side is checked with and without them.
func TestE2EInteropWireguardGoBinary(t *testing.T) {
	needRoot(t)
	wggo := wireguardGo(t)
	p := newNetnsPair(t)
	dir := t.TempDir()
	a := newTunnelSide(t, dir, p.a, fmt.Sprintf("wgdi%d", os.Getpid()%100000))
	b := newTunnelSide(t, dir, p.b, fmt.Sprintf("wggo%d", os.Getpid()%100000))
	configure := func(s, other tunnelSide, n, otherN int) {
		t.Helper()
		run(t, "ip", "netns", "exec", s.ns, "wg", "set", s.iface, "private-key", s.key, "listen-port", "51820",
			"peer", other.pub, "endpoint", fmt.Sprintf("198.18.0.%d:51820", otherN),
			"allowed-ips", fmt.Sprintf("198.19.0.%d/32,fd00:2::%d/128", otherN, otherN))
		run(t, "ip", "-n", s.ns, "addr", "add", fmt.Sprintf("198.19.0.%d/24", n), "dev", s.iface)
		run(t, "ip", "-n", s.ns, "addr", "add", fmt.Sprintf("fd00:2::%d/64", n), "dev", s.iface, "nodad")
		run(t, "ip", "-n", s.ns, "link", "set", s.iface, "mtu", "1420", "up")
	}
	// wireguard-go's parent returns before its child holds the interface:
	// wait for its UAPI socket.
	run(t, "ip", "netns", "exec", b.ns, wggo, b.iface)
	sock := "/var/run/wireguard/" + b.iface + ".sock"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("wireguard-go did not create its UAPI socket")
		}
	}
	run(t, "ip", "netns", "exec", a.ns, wgdBin, a.iface)
	configure(a, b, 1, 2)
	configure(b, a, 2, 1)

	// wireguard-go initiates.
	run(t, "ip", "netns", "exec", b.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.19.0.1")
	run(t, "ip", "netns", "exec", b.ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:2::1")
	tcpTransfer(t, p, "198.19.0.2")
	tcpTransfer(t, p, "[fd00:2::2]")

	// wgd restarts and initiates: wireguard-go must accept the new session.
	run(t, "ip", "-n", a.ns, "link", "del", a.iface)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat("/var/run/wireguard/" + a.iface + ".sock"); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("wgd did not exit after its link was deleted")
		}
	}
	run(t, "ip", "netns", "exec", a.ns, "env", "WGD_NO_OFFLOAD=1", wgdBin, a.iface)
	configure(a, b, 1, 2)
	run(t, "ip", "netns", "exec", a.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.19.0.2")
	tcpTransfer(t, p, "198.19.0.2")
	tcpTransfer(t, p, "[fd00:2::2]")
	dump := run(t, "ip", "netns", "exec", a.ns, "wg", "show", a.iface, "latest-handshakes")
	if !strings.Contains(dump, b.pub) || strings.Contains(dump, "\t0\n") {
		t.Errorf("no handshake with wireguard-go recorded:\n%s", dump)
	}
}

// tunnelSide is one end of a tunnel between two namespaces: where it runs,
// its interface, its private key's file and its public key.
type tunnelSide struct{ ns, iface, key, pub string }

// newTunnelSide makes a key pair for a side (the private key in a file in
// dir) and deletes its interface at cleanup.
func newTunnelSide(t *testing.T, dir, ns, iface string) tunnelSide {
	t.Helper()
	priv, pub := genKeyPair(t)
	s := tunnelSide{ns: ns, iface: iface, key: dir + "/" + iface + ".key", pub: pub}
	if err := os.WriteFile(s.key, []byte(priv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", iface).Run() })
	return s
}

// TestE2EShowJSONLeavesWireguardGoQuiet: `wgd show --json` of a
// wireguard-go interface prints it with "counters": null and does not send
// wgd's counters request, which wireguard-go logged as an error ("invalid
// UAPI operation") on every call, so a monitoring job filled its log.
func TestE2EShowJSONLeavesWireguardGoQuiet(t *testing.T) {
	needRoot(t)
	wggo := wireguardGo(t)
	ns := newNetns(t, "json")
	iface := fmt.Sprintf("wgjg%d", os.Getpid()%100000)
	var log lockedBuffer
	cmd := exec.Command("ip", "netns", "exec", ns, "env", "LOG_LEVEL=verbose", wggo, "-f", iface)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cleanupIface(ns, iface)
	})
	sock := "/var/run/wireguard/" + iface + ".sock"
	if !waitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatalf("wireguard-go did not create its UAPI socket:\n%s", log.String())
	}
	_, pub := genKeyPair(t)
	run(t, "ip", "netns", "exec", ns, "wg", "set", iface, "listen-port", "51820",
		"peer", pub, "allowed-ips", "198.19.0.2/32")
	// Only the named form: "all" would also ask the daemons of other
	// tests, whose sockets share /var/run/wireguard.
	for range 3 {
		r := wgdIn(t, ns, "show", "--json", iface)
		if r.code != 0 {
			t.Fatalf("wgd show --json: exit %d\n%s", r.code, r.stderr)
		}
		contains(t, "wgd show --json", r.stdout, `"counters": null`, pub)
	}
	// wireguard-go logs each UAPI operation it does not know as it closes
	// the connection; give a late line a moment to appear.
	time.Sleep(100 * time.Millisecond)
	lacks(t, "wireguard-go's log", log.String(), "invalid UAPI operation", "ERROR")
}
