package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/ipc"
)

// End-to-end tests of the places where `wgd up/down/save` must do what
// wg-quick does and once did not: refusing an interface that is not
// WireGuard, rolling back a failed setconf, SaveConfig through a relative
// path or a symbolic link after PreDown with the file's current hooks, a
// failing PreDown, an interface that vanished, IPv4-mapped addresses, and
// hooks' shell and output.

// wgdInDir runs the wgd binary in namespace ns with working directory dir.
func wgdInDir(t *testing.T, ns, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, wgdBin}, args...)...)
	cmd.Dir = dir
	return runCmd(t, cmd)
}

func TestE2EQuickDownRefusesOtherInterface(t *testing.T) {
	s := newQuickSetup(t)
	marker := filepath.Join(s.dir, "predown-ran")
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nPreDown = touch "+marker, "AllowedIPs = 198.19.0.2/32")
	run(t, "ip", "-n", s.a.ns, "link", "add", s.a.iface, "type", "veth", "peer", "name", s.a.iface+"p")
	r := wgdIn(t, s.a.ns, "down", path)
	if r.code == 0 || !strings.Contains(r.stderr, "is not a WireGuard interface") {
		t.Fatalf("down of a dummy link: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("PreDown ran for an interface that is not WireGuard")
	}
	ipIn(t, s.a.ns, "link", "show", s.a.iface) // still there
}

func TestE2EQuickUpPortInUseRollsBack(t *testing.T) {
	s := newQuickSetup(t)
	first := s.conf(t, s.a, "ListenPort = 51999", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", first)
	// The same namespace, a second interface on the same port.
	text := "[Interface]\nPrivateKey = " + s.b.priv + "\nListenPort = 51999\nAddress = 198.19.5.1/24\n"
	second := writeQuickConf(t, s.dir, s.b.iface, text)
	t.Cleanup(func() { cleanupIface(s.a.ns, s.b.iface) })
	r := wgdIn(t, s.a.ns, "up", second)
	if r.code == 0 || !strings.Contains(r.stderr, "Unable to modify interface: Address already in use") {
		t.Fatalf("up on a port in use: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out, err := exec.Command("ip", "-n", s.a.ns, "link", "show", s.b.iface).CombinedOutput(); err == nil {
		t.Fatalf("failed up left the link:\n%s", out)
	}
	sock := filepath.Join("/var/run/wireguard", s.b.iface+".sock")
	if !waitFor(3e9, func() bool { _, err := os.Stat(sock); return err != nil }) {
		t.Error("failed up left its UAPI socket")
	}
	mustWgd(t, s.a.ns, "down", first)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickSaveConfigFollowsFile: up through a relative path to a
// symbolic link; the file is edited while up; down from elsewhere saves
// through the link into the target, after PreDown (whose peer is in the
// saved file), with the hooks as edited, and runs the edited PostDown.
func TestE2EQuickSaveConfigFollowsFile(t *testing.T) {
	s := newQuickSetup(t)
	_, hookPub := genKeyPair(t)
	real := filepath.Join(s.dir, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(real, "target.conf")
	text := "[Interface]\nPrivateKey = " + s.a.priv + "\nListenPort = 51820\nAddress = 198.19.0.1/24\nSaveConfig = true\n" +
		"PreDown = " + wgdBin + " set %i peer " + hookPub + " allowed-ips 198.19.0.33/32\n" +
		"PostDown = echo post-OLD\n\n[Peer]\nPublicKey = " + s.b.pub + "\nAllowedIPs = 198.19.0.2/32\n"
	if err := os.WriteFile(target, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(s.dir, s.a.iface+".conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if r := wgdInDir(t, s.a.ns, s.dir, "up", s.a.iface+".conf"); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	edited := strings.Replace(text, "post-OLD", "post-NEW", 1)
	if err := os.WriteFile(target, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	r := wgdInDir(t, s.a.ns, "/", "down", link)
	if r.code != 0 {
		t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
	}
	contains(t, "down stdout (hook output)", r.stdout, "post-NEW")
	lacks(t, "down output", r.stdout+r.stderr, "post-OLD")
	contains(t, "down stderr", r.stderr, "[#] saving configuration to "+target)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symbolic link was replaced: %v %v", fi, err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "saved target", string(data), "PublicKey = "+hookPub, "PostDown = echo post-NEW", "PublicKey = "+s.b.pub)
	if _, err := os.Stat(filepath.Join("/", s.a.iface+".conf")); err == nil {
		os.Remove(filepath.Join("/", s.a.iface+".conf"))
		t.Error("SaveConfig wrote a file relative to down's working directory")
	}
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickPreDownFailureKeepsUp: a failing PreDown stops down with the
// interface up (wg-quick's set -e); with the hook fixed in the file, the
// next down works.
func TestE2EQuickPreDownFailureKeepsUp(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nPreDown = exit 5", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", path)
	if r := wgdIn(t, s.a.ns, "down", path); r.code != 5 {
		t.Fatalf("down with a failing PreDown: exit %d, want the hook's 5:\n%s", r.code, r.stderr)
	}
	contains(t, "address after a refused down", ipIn(t, s.a.ns, "addr", "show", "dev", s.a.iface), "198.19.0.1/24")
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), "PreDown = exit 5", "PreDown = true", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	mustWgd(t, s.a.ns, "down", path)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickDownAfterLinkGone: the interface was deleted under up's feet;
// down says so, cleans up, and does not claim to delete the link.
func TestE2EQuickDownAfterLinkGone(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", path)
	run(t, "ip", "-n", s.a.ns, "link", "del", s.a.iface)
	out := mustWgd(t, s.a.ns, "down", path)
	contains(t, "down output", out, "is gone")
	lacks(t, "down output", out, "[#] ip link delete")
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickMappedAddresses: an IPv4-mapped Address is refused before
// anything changes (the netlink package would add it as a bad IPv4
// address); an IPv4-mapped allowed IP gets a warning and no route, since
// the kernel routes no IPv6 packets to such addresses.
func TestE2EQuickMappedAddresses(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = ::ffff:198.19.1.1/128", "AllowedIPs = 198.19.0.2/32")
	r := wgdIn(t, s.a.ns, "up", path)
	if r.code == 0 || !strings.Contains(r.stderr, "IPv4-mapped IPv6 addresses are not supported; write 198.19.1.1/32") {
		t.Fatalf("up with a mapped Address: exit %d\n%s", r.code, r.stderr)
	}
	assertGone(t, s.a.ns, s.a.iface)
	path = s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = ::ffff:198.19.7.0/120, 198.19.0.2/32")
	out := mustWgd(t, s.a.ns, "up", path)
	contains(t, "up output", out, "Warning: no route for the IPv4-mapped ::ffff:198.19.7.0/120")
	lacks(t, "routes", ipIn(t, s.a.ns, "-4", "route", "show", "table", "all")+ipIn(t, s.a.ns, "-6", "route", "show", "table", "all"), "198.19.7.0")
	mustWgd(t, s.a.ns, "down", path)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickSave: `wgd save` writes a peer added at run time to the file
// and leaves the interface up.
func TestE2EQuickSave(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nPostUp = echo post-up-ran", "AllowedIPs = 198.19.0.2/32")
	r := wgdIn(t, s.a.ns, "up", path)
	if r.code != 0 || !strings.Contains(r.stdout, "post-up-ran") {
		t.Fatalf("up: exit %d, hook output not on stdout\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	_, newPub := genKeyPair(t)
	run(t, "ip", "netns", "exec", s.a.ns, wgdBin, "set", s.a.iface, "peer", newPub, "allowed-ips", "198.19.0.44/32")
	mustWgd(t, s.a.ns, "save", path)
	data, _ := os.ReadFile(path)
	contains(t, "saved config", string(data), "PublicKey = "+newPub, "PostUp = echo post-up-ran", "Address = 198.19.0.1/24")
	lacks(t, "saved config (the file had no SaveConfig)", string(data), "SaveConfig")
	ipIn(t, s.a.ns, "link", "show", s.a.iface)
	mustWgd(t, s.a.ns, "down", path)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickDownWrongNamespace: down run in a namespace where the link
// is not, while its daemon still answers, refuses and keeps the record;
// down in the right namespace then works.
func TestE2EQuickDownWrongNamespace(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", path)
	r := wgdIn(t, s.b.ns, "down", path)
	if r.code == 0 || !strings.Contains(r.stderr, "is not in this network namespace") {
		t.Fatalf("down in the wrong namespace: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(stateDir, s.a.iface+".json")); err != nil {
		t.Fatalf("state file removed: %v", err)
	}
	mustWgd(t, s.a.ns, "down", path)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickDownOnlyStale: `down --only-stale` (the unit's ExecStopPost)
// leaves a live interface alone, as after a start that failed with
// "already exists", and still cleans up after a daemon that is gone.
func TestE2EQuickDownOnlyStale(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 198.19.0.2/32")
	mustWgd(t, s.a.ns, "up", path)
	if r := wgdIn(t, s.a.ns, "up", "-f", path); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second up -f: exit %d\n%s", r.code, r.stderr)
	}
	mustWgd(t, s.a.ns, "down", "--only-stale", path)
	contains(t, "address kept", ipIn(t, s.a.ns, "addr", "show", "dev", s.a.iface), "198.19.0.1/24")
	killDaemon(t, s.a.ns, s.a.iface)
	// The link goes with the TUN fd; the listener may outlive it by a
	// moment while the dead process's files close (systemd runs
	// ExecStopPost only after the process is gone).
	waitFor(3*time.Second, func() bool {
		c, err := ipc.Dial(s.a.iface)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	mustWgd(t, s.a.ns, "down", "--only-stale", path)
	assertGone(t, s.a.ns, s.a.iface)
	// After a clean stop (the unit's usual case) it has nothing to do and
	// says nothing.
	if r := wgdIn(t, s.a.ns, "down", "--only-stale", path); r.code != 0 || r.stderr != "" || r.stdout != "" {
		t.Fatalf("down --only-stale with nothing up: %+v", r)
	}
}

// TestE2EQuickUpAfterKilledDaemon: up of a full tunnel whose earlier daemon
// was killed (its link went with it, its policy rules and nftables tables
// stayed) first takes away what that one left, so the rules are not there
// twice; down then leaves nothing.
func TestE2EQuickUpAfterKilledDaemon(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24", "AllowedIPs = 0.0.0.0/0")
	mustWgd(t, s.a.ns, "up", path)
	rules := ipIn(t, s.a.ns, "-4", "rule")
	run(t, "ip", "netns", "exec", s.a.ns, "pkill", "-KILL", "-f", wgdBin+" -f "+s.a.iface)
	if !waitFor(5*time.Second, func() bool {
		return exec.Command("ip", "-n", s.a.ns, "link", "show", s.a.iface).Run() != nil
	}) {
		t.Fatal("link still there after the daemon was killed")
	}
	out := mustWgd(t, s.a.ns, "up", path)
	contains(t, "up output", out, "an earlier up of `"+s.a.iface+"' was not taken down")
	if got := ipIn(t, s.a.ns, "-4", "rule"); got != rules {
		t.Errorf("rules after up over a killed one:\n%swant\n%s", got, rules)
	}
	mustWgd(t, s.a.ns, "down", path)
	assertGone(t, s.a.ns, s.a.iface)
}

// TestE2EQuickDownAfterUpKilledMidway: wgd up and its daemon killed
// outright halfway (as a unit's start timeout kills the whole unit, here
// during a PostUp hook of a full tunnel): the record is written before the
// addresses, routes and rules, so down finds and removes them. It was
// written at the end, and down said "not up: nothing to take down" and
// left the policy rules and nftables tables.
func TestE2EQuickDownAfterUpKilledMidway(t *testing.T) {
	s := newQuickSetup(t)
	path := s.conf(t, s.a, "Address = 198.19.0.1/24\nPostUp = sleep 5", "AllowedIPs = 0.0.0.0/0")
	cmd := exec.Command("ip", "netns", "exec", s.a.ns, wgdBin, "up", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // up and its hook, not the detached daemon
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAll := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		exec.Command("pkill", "-KILL", "-f", wgdBin+" -f "+s.a.iface).Run()
		cmd.Wait()
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(out.String(), "[#] sleep 5") }) {
		killAll()
		t.Fatalf("up never reached PostUp:\n%s", out.String())
	}
	killAll()
	if !waitFor(5*time.Second, func() bool {
		return exec.Command("ip", "-n", s.a.ns, "link", "show", s.a.iface).Run() != nil
	}) {
		t.Fatal("link still there after the daemon was killed")
	}
	contains(t, "rules left by the killed up", ipIn(t, s.a.ns, "-4", "rule"), "suppress_prefixlength")
	down := mustWgd(t, s.a.ns, "down", path)
	contains(t, "down output", down, "is gone")
	assertGone(t, s.a.ns, s.a.iface)
	if nft, err := exec.Command("ip", "netns", "exec", s.a.ns, "nft", "list", "tables").CombinedOutput(); err == nil && strings.Contains(string(nft), s.a.iface) {
		t.Errorf("nftables table left behind:\n%s", nft)
	}
}
