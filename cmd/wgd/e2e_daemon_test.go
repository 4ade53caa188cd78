package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsPair is two network namespaces joined by a veth pair, with
// underlay addresses 198.18.0.1/24 + fd00:1::1/64 (a) and .2 (b).
type netnsPair struct {
	a, b string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and TUN devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun")
	}
	for _, tool := range []string{"ip", "wg", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it)", tool)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	p := &netnsPair{a: "wgdt-a-" + suffix, b: "wgdt-b-" + suffix}
	run(t, "ip", "netns", "add", p.a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.a).Run() })
	run(t, "ip", "netns", "add", p.b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.b).Run() })
	run(t, "ip", "link", "add", "veth0", "netns", p.a, "type", "veth", "peer", "name", "veth0", "netns", p.b)
	for i, ns := range []string{p.a, p.b} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("198.18.0.%d/24", i+1), "dev", "veth0")
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("fd00:1::%d/64", i+1), "dev", "veth0", "nodad")
		run(t, "ip", "-n", ns, "link", "set", "veth0", "up")
	}
	return p
}

// newNetns creates a network namespace named after tag and the test
// process (deleted at cleanup) and returns its name.
func newNetns(t *testing.T, tag string) string {
	t.Helper()
	ns := fmt.Sprintf("wgdt-%s-%d", tag, os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// inNetns runs f on an OS thread switched into namespace ns; sockets f
// creates stay in ns.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	f()
}

// writeKeys makes a key pair for sides "a" and "b" with wgd itself, writes
// each private key to dir/SIDE.key and returns the public keys by side.
func writeKeys(t *testing.T, dir string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	for _, side := range []string{"a", "b"} {
		priv, pub := genKeyPair(t)
		if err := os.WriteFile(dir+"/"+side+".key", []byte(priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		keys[side] = pub
	}
	return keys
}

// TestE2EDaemonsInNamespaces runs two `wgd` daemons (background mode) in
// two namespaces, configures them with the real `wg`, and checks ping and a
// TCP transfer with a checksum over IPv4 and IPv6 inside the tunnel, over
// an IPv4 and then an IPv6 underlay.
func TestE2EDaemonsInNamespaces(t *testing.T) {
	needRoot(t)
	for _, underlay6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("underlay_ipv6=%v", underlay6), func(t *testing.T) {
			p := newNetnsPair(t)
			dir := t.TempDir()
			keys := writeKeys(t, dir)
			ifname := func(ns string) string { return fmt.Sprintf("wgdt%s%d", ns, os.Getpid()%10000) }
			for i, ns := range []string{"a", "b"} {
				other := "b"
				otherN := 2
				if ns == "b" {
					other, otherN = "a", 1
				}
				nsName := p.a
				if ns == "b" {
					nsName = p.b
				}
				dev := ifname(ns)
				run(t, "ip", "netns", "exec", nsName, wgdBin, dev)
				t.Cleanup(func() { exec.Command("ip", "-n", nsName, "link", "del", dev).Run() })
				ep := fmt.Sprintf("198.18.0.%d:51820", otherN)
				if underlay6 {
					ep = fmt.Sprintf("[fd00:1::%d]:51820", otherN)
				}
				run(t, "ip", "netns", "exec", nsName, "wg", "set", dev,
					"private-key", dir+"/"+ns+".key", "listen-port", "51820",
					"peer", keys[other], "endpoint", ep,
					"allowed-ips", fmt.Sprintf("198.19.0.%d/32,fd00:2::%d/128", otherN, otherN))
				run(t, "ip", "-n", nsName, "addr", "add", fmt.Sprintf("198.19.0.%d/24", i+1), "dev", dev)
				run(t, "ip", "-n", nsName, "addr", "add", fmt.Sprintf("fd00:2::%d/64", i+1), "dev", dev, "nodad")
				run(t, "ip", "-n", nsName, "link", "set", dev, "up")
			}
			run(t, "ip", "netns", "exec", p.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.19.0.2")
			run(t, "ip", "netns", "exec", p.a, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:2::2")
			tcpTransfer(t, p, "198.19.0.2")
			tcpTransfer(t, p, "[fd00:2::2]")
			dump := run(t, "ip", "netns", "exec", p.a, "wg", "show", ifname("a"), "dump")
			if !strings.Contains(dump, keys["b"]) {
				t.Errorf("wg show dump lacks the peer:\n%s", dump)
			}
		})
	}
}

// tcpTransfer sends 8 MiB from namespace a to a listener in b and compares
// SHA-256 sums.
func tcpTransfer(t *testing.T, p *netnsPair, host string) {
	t.Helper()
	var ln net.Listener
	inNetns(t, p.b, func() {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(strings.Trim(host, "[]"), "0"))
		if err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		h := sha256.New()
		io.Copy(h, c)
		got <- h.Sum(nil)
	}()
	data := make([]byte, 8<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	var c net.Conn
	inNetns(t, p.a, func() {
		var err error
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
	})
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.Close()
	if sum := <-got; !bytes.Equal(sum, want[:]) {
		t.Fatalf("TCP transfer to %s: checksum mismatch", host)
	}
}

// TestE2ENetnsMoveAndExit starts a daemon in namespace a, moves its TUN
// into a third namespace (the UDP socket stays in a, as with wireguard-go),
// checks the tunnel works from there, then deletes the link and checks the
// daemon exits and removes its UAPI socket. With only the capabilities the
// systemd unit grants, the daemon cannot follow the link into the other
// namespace (that takes setns(2)); it took that for a deletion and stopped.
func TestE2ENetnsMoveAndExit(t *testing.T) {
	needRoot(t)
	t.Run("root", func(t *testing.T) { netnsMoveAndExit(t, nil) })
	t.Run("net_admin", func(t *testing.T) {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("needs setpriv (util-linux)")
		}
		netnsMoveAndExit(t, []string{"setpriv", "--inh-caps=-all", "--bounding-set=-all,+net_admin,+net_bind_service", "--no-new-privs"})
	})
}

// netnsMoveAndExit is TestE2ENetnsMoveAndExit with daemon a started under
// the command prefix wrap.
func netnsMoveAndExit(t *testing.T, wrap []string) {
	p := newNetnsPair(t)
	inner := p.a + "-in"
	run(t, "ip", "netns", "add", inner)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", inner).Run() })
	dir := t.TempDir()
	dev := func(ns string) string { return fmt.Sprintf("wgdm%s%d", ns, os.Getpid()%10000) }
	keys := writeKeys(t, dir)
	run(t, append(append([]string{"ip", "netns", "exec", p.a}, wrap...), wgdBin, dev("a"))...)
	run(t, "ip", "netns", "exec", p.b, wgdBin, dev("b"))
	t.Cleanup(func() {
		exec.Command("ip", "-n", inner, "link", "del", dev("a")).Run()
		exec.Command("ip", "-n", p.b, "link", "del", dev("b")).Run()
	})
	// Move a's TUN away before configuring it: the daemon keeps the fd.
	run(t, "ip", "-n", p.a, "link", "set", dev("a"), "netns", inner)
	time.Sleep(300 * time.Millisecond) // the watcher has seen the move
	run(t, "ip", "netns", "exec", p.a, "wg", "set", dev("a"), "private-key", dir+"/a.key", "listen-port", "51820",
		"peer", keys["b"], "endpoint", "198.18.0.2:51820", "allowed-ips", "198.19.0.2/32")
	run(t, "ip", "netns", "exec", p.b, "wg", "set", dev("b"), "private-key", dir+"/b.key", "listen-port", "51820",
		"peer", keys["a"], "endpoint", "198.18.0.1:51820", "allowed-ips", "198.19.0.1/32")
	run(t, "ip", "-n", inner, "link", "set", "lo", "up")
	run(t, "ip", "-n", inner, "addr", "add", "198.19.0.1/24", "dev", dev("a"))
	run(t, "ip", "-n", inner, "link", "set", dev("a"), "up")
	run(t, "ip", "-n", p.b, "addr", "add", "198.19.0.2/24", "dev", dev("b"))
	run(t, "ip", "-n", p.b, "link", "set", dev("b"), "up")
	run(t, "ip", "netns", "exec", inner, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.19.0.2")

	// Deleting the link stops the daemon, which removes its socket.
	sock := "/var/run/wireguard/" + dev("a") + ".sock"
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("UAPI socket missing while the daemon runs: %v", err)
	}
	run(t, "ip", "-n", inner, "link", "del", dev("a"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not exit and remove its socket after its TUN was deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		out, _ := exec.Command("pgrep", "-f", wgdBin+" -f "+dev("a")).Output()
		if len(out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon still running after its TUN was deleted: pids %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EDetachedDaemonLetsGoOfOutput: `wgd IFACE` returns once the daemon
// is ready, and with LOG_LEVEL unset or "silent" the daemon holds none of
// the caller's output open (as wireguard-go), so a caller reading it to
// the end (`out=$(wgd wg0 2>&1)`) is not kept waiting. With a log level
// the daemon keeps its output for the log (on stdout, as wireguard-go).
func TestE2EDetachedDaemonLetsGoOfOutput(t *testing.T) {
	needRoot(t)
	for _, level := range []string{"", "silent", "error"} {
		t.Run("LOG_LEVEL="+level, func(t *testing.T) {
			ns := newNetns(t, "out")
			dev := fmt.Sprintf("wgdto%d", os.Getpid()%10000)
			c := exec.Command("ip", "netns", "exec", ns, wgdBin, dev)
			c.Env = append(os.Environ(), "LOG_LEVEL="+level)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c.Stdout, c.Stderr = w, w
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", dev).Run() })
			if err := c.Wait(); err != nil {
				t.Fatalf("wgd %s: %v", dev, err)
			}
			done := make(chan error, 1)
			go func() { _, err := io.ReadAll(r); done <- err }()
			select {
			case <-done:
				if level == "error" {
					t.Fatal("the daemon let go of stderr with LOG_LEVEL=error; it logs there")
				}
			case <-time.After(2 * time.Second):
				if level != "error" {
					t.Fatalf("the daemon still holds the caller's output with LOG_LEVEL=%q", level)
				}
				exec.Command("ip", "-n", ns, "link", "del", dev).Run() // the daemon exits and lets go
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("output still held after the daemon's link was deleted")
				}
			}
		})
	}
}

// TestE2ETemplateName: `wgd 'NAME%d'` lets the kernel pick the number, and
// the UAPI socket is named after the interface it created (wireguard-go
// does the same), so `wg show` finds it by its real name.
func TestE2ETemplateName(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, "tpl")
	prefix := fmt.Sprintf("wq%dx", os.Getpid()%10000)
	real := prefix + "0" // the first free number in a fresh namespace
	t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", real).Run() })
	run(t, "ip", "netns", "exec", ns, wgdBin, prefix+"%d")
	if out := run(t, "ip", "-n", ns, "-o", "link", "show", real); !strings.Contains(out, real) {
		t.Fatalf("no link %s: %s", real, out)
	}
	if _, err := os.Stat("/var/run/wireguard/" + real + ".sock"); err != nil {
		t.Fatalf("socket of %s: %v", real, err)
	}
	if _, err := os.Stat("/var/run/wireguard/" + prefix + "%d.sock"); err == nil {
		t.Fatal("socket named after the template")
	}
	if out := run(t, "ip", "netns", "exec", ns, "wg", "show", real, "listen-port"); strings.TrimSpace(out) == "" {
		t.Fatal("wg show found no listen port")
	}
	run(t, "ip", "-n", ns, "link", "del", real)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/var/run/wireguard/" + real + ".sock"); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("socket left after the link was deleted")
}

// TestE2EHandedOverFds: as wireguard-go, the daemon takes a TUN and a
// listening UAPI socket another process opened, named by WG_TUN_FD and
// WG_UAPI_FD, in the foreground and (renumbered for the child) in the
// background form; the TUN's own name wins over the command line's.
func TestE2EHandedOverFds(t *testing.T) {
	needRoot(t)
	for _, background := range []bool{false, true} {
		t.Run(fmt.Sprintf("background=%v", background), func(t *testing.T) {
			ns := newNetns(t, "fd")
			dev := fmt.Sprintf("wgdfd%d", os.Getpid()%10000)
			var tunFile *os.File
			inNetns(t, ns, func() {
				fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				ifr, err := unix.NewIfreq(dev)
				if err != nil {
					t.Fatal(err)
				}
				ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
				if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
					t.Fatal(err)
				}
				tunFile = os.NewFile(uintptr(fd), "tun")
			})
			defer tunFile.Close()
			sock := "/var/run/wireguard/" + dev + ".sock"
			os.MkdirAll("/var/run/wireguard", 0o755)
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			uapiFile, err := ln.File()
			ln.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer uapiFile.Close()
			t.Cleanup(func() { os.Remove(sock) })
			c := exec.Command("ip", "netns", "exec", ns, wgdBin, "some-other-name")
			c.ExtraFiles = []*os.File{tunFile, uapiFile}
			c.Env = append(os.Environ(), "WG_TUN_FD=3", "WG_UAPI_FD=4", "LOG_LEVEL=")
			if !background {
				c.Env = append(c.Env, "WG_PROCESS_FOREGROUND=1")
			}
			out := &strings.Builder{}
			c.Stdout, c.Stderr = out, out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			tunFile.Close()
			uapiFile.Close()
			if background {
				if err := c.Wait(); err != nil {
					t.Fatalf("wgd: %v\n%s", err, out)
				}
			} else {
				defer func() { c.Process.Kill(); c.Wait() }()
			}
			var port string
			if !waitFor(5*time.Second, func() bool {
				o, err := exec.Command("ip", "netns", "exec", ns, "wg", "show", dev, "listen-port").Output()
				port = strings.TrimSpace(string(o))
				return err == nil && port != ""
			}) {
				t.Fatalf("wg show %s: no answer on the handed-over socket\n%s", dev, out)
			}
			run(t, "ip", "netns", "exec", ns, "wg", "set", dev, "listen-port", "51999")
			if p := strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "wg", "show", dev, "listen-port")); p != "51999" {
				t.Fatalf("listen-port %q after set", p)
			}
			if _, err := os.Stat("/var/run/wireguard/some-other-name.sock"); err == nil {
				t.Fatal("a socket was made for the command line's name")
			}
			run(t, "ip", "-n", ns, "link", "del", dev) // the daemon exits
			if !waitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err != nil }) {
				t.Fatalf("socket left after the link was deleted\n%s", out)
			}
		})
	}
}

// TestE2EDaemonLogsToStdout: the daemon's log goes to stdout, as
// wireguard-go's does, in the foreground and (with LOG_LEVEL set) from the
// detached daemon, so `LOG_LEVEL=verbose wgd wg0 >wg.log` captures it.
func TestE2EDaemonLogsToStdout(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, "log")
	dev := fmt.Sprintf("wgdlg%d", os.Getpid()%10000)
	t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", dev).Run() })
	logPath := filepath.Join(t.TempDir(), "wg.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	errPath := filepath.Join(t.TempDir(), "wg.err")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	// Files, not pipes: the detached daemon keeps both, so Run would wait
	// for it to exit if they were pipes.
	c := exec.Command("ip", "netns", "exec", ns, wgdBin, dev)
	c.Env = append(os.Environ(), "LOG_LEVEL=verbose")
	c.Stdout, c.Stderr = logFile, errFile
	err = c.Run()
	logFile.Close()
	errFile.Close()
	readErr := func() string { b, _ := os.ReadFile(errPath); return string(b) }
	if err != nil {
		t.Fatalf("wgd %s: %v\n%s", dev, err, readErr())
	}
	run(t, "ip", "-n", ns, "link", "del", dev)
	if !waitFor(5*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "shutting down")
	}) {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("stdout log lacks the daemon's lines:\n%s\nstderr:\n%s", b, readErr())
	}
	b, _ := os.ReadFile(logPath)
	contains(t, "stdout log", string(b), "device started")
	if strings.Contains(readErr(), "device started") {
		t.Fatalf("log on stderr too:\n%s", readErr())
	}
}

// TestE2ELinkLocalEndpoint: a peer whose endpoint is a link-local address
// with a zone ([fe80::b%veth0]) is reached on that link, also when other
// links carry fe80::/64 too (here a decoy veth whose route comes first),
// and wg shows the zone, also once the peer's packets have set the
// endpoint. The zone used to be dropped on the way to the socket, so the
// kernel picked the first fe80::/64 route and the handshake never arrived.
func TestE2ELinkLocalEndpoint(t *testing.T) {
	needRoot(t)
	a, b := newNetns(t, "lla"), newNetns(t, "llb")
	run(t, "ip", "-n", a, "link", "add", "decoy0", "type", "veth", "peer", "name", "decoy1")
	run(t, "ip", "-n", a, "addr", "add", "fe80::99/64", "dev", "decoy0", "nodad")
	run(t, "ip", "link", "add", "veth0", "netns", a, "type", "veth", "peer", "name", "veth0", "netns", b)
	for _, l := range []struct{ ns, dev, addr string }{{a, "decoy0", ""}, {a, "decoy1", ""}, {a, "veth0", "fe80::a/64"}, {b, "veth0", "fe80::b/64"}} {
		if l.addr != "" {
			run(t, "ip", "-n", l.ns, "addr", "add", l.addr, "dev", l.dev, "nodad")
		}
		run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	}
	dir := t.TempDir()
	keys := writeKeys(t, dir)
	devs := map[string]string{"a": fmt.Sprintf("wgdlla%d", os.Getpid()%10000), "b": fmt.Sprintf("wgdllb%d", os.Getpid()%10000)}
	for i, side := range []struct{ ns, name, other string }{{a, "a", "b"}, {b, "b", "a"}} {
		dev := devs[side.name]
		run(t, "ip", "netns", "exec", side.ns, wgdBin, dev)
		ns := side.ns
		t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", dev).Run() })
		args := []string{"ip", "netns", "exec", side.ns, "wg", "set", dev, "private-key", dir + "/" + side.name + ".key",
			"listen-port", "51820", "peer", keys[side.other], "allowed-ips", fmt.Sprintf("198.19.0.%d/32", 2-i)}
		if side.name == "a" {
			args = append(args, "endpoint", "[fe80::b%veth0]:51820")
		}
		run(t, args...)
		run(t, "ip", "-n", side.ns, "addr", "add", fmt.Sprintf("198.19.0.%d/24", i+1), "dev", dev)
		run(t, "ip", "-n", side.ns, "link", "set", dev, "up")
	}
	run(t, "ip", "netns", "exec", a, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.19.0.2")
	if got := run(t, "ip", "netns", "exec", a, "wg", "show", devs["a"], "endpoints"); !strings.Contains(got, "[fe80::b%veth0]:51820") {
		t.Errorf("a's endpoint: %s", got)
	}
	if got := run(t, "ip", "netns", "exec", b, "wg", "show", devs["b"], "endpoints"); !strings.Contains(got, "[fe80::a%veth0]:") {
		t.Errorf("b's endpoint (learnt from a's packets): %s", got)
	}
}

// TestE2EUAPISurvivesFdExhaustion: a burst of UAPI clients that takes the
// daemon past its file descriptor limit makes accept fail with EMFILE for
// a while; the daemon waits and goes on serving once they leave. It used
// to stop serving, and with the UAPI gone the daemon and its tunnel
// stopped too.
func TestE2EUAPISurvivesFdExhaustion(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, "fds")
	iface := fmt.Sprintf("wgfd%d", os.Getpid()%100000)
	t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", iface).Run() })
	run(t, "ip", "netns", "exec", ns, "prlimit", "--nofile=40:40", wgdBin, iface)
	sock := "/var/run/wireguard/" + iface + ".sock"
	var conns []net.Conn
	for range 60 {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(300 * time.Millisecond) // accept runs into EMFILE
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command("ip", "netns", "exec", ns, "wg", "show", iface, "listen-port").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon no longer answers after %d connections at 40 fds: %v\n%s", len(conns), err, out)
		}
	}
}

// TestE2EDaemonNearTypoSaysSo: `wgd shwo` (a mistyped `show`) starts a
// daemon, as wireguard-go's command line asks, but says so on stderr; it
// used to leave a new link and process with nothing printed. A name that
// is no near miss starts one silently, as wireguard-go.
func TestE2EDaemonNearTypoSaysSo(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, "typo")
	plain := fmt.Sprintf("wgdty%d", os.Getpid()%10000)
	for name, want := range map[string]string{"shwo": `"shwo" is not a command (did you mean "show"?)`, plain: ""} {
		t.Cleanup(func() { exec.Command("ip", "-n", ns, "link", "del", name).Run() })
		r := runTool(t, "", "ip", "netns", "exec", ns, wgdBin, name)
		if r.code != 0 {
			t.Fatalf("wgd %s: exit %d\n%s", name, r.code, r.stderr)
		}
		if want == "" && r.stderr != "" {
			t.Errorf("wgd %s printed %q", name, r.stderr)
		}
		if !strings.Contains(r.stderr, want) {
			t.Errorf("wgd %s: no %q in %q", name, want, r.stderr)
		}
		run(t, "ip", "-n", ns, "link", "show", name)
	}
}
