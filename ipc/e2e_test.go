package ipc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

var e2eSeq atomic.Int32

// startE2E serves a fake device at DefaultDir/wgdtNNN.sock, where wg(8)
// and wgctrl-go look. It needs root for /var/run/wireguard.
func startE2E(t *testing.T) (string, *fakeDevice) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: serves a socket in /var/run/wireguard")
	}
	name := fmt.Sprintf("wgdt%d%d", os.Getpid()%10000, e2eSeq.Add(1))
	l, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	dev := newFakeDevice()
	go l.Serve(context.Background(), dev, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { l.Close() })
	return name, dev
}

func needWG(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("needs wg (wireguard-tools)")
	}
}

func wg(t *testing.T, args ...string) string {
	t.Helper()
	out, err := wgErr(args...)
	if err != nil {
		t.Fatalf("wg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func wgErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wg", args...).CombinedOutput()
	return string(out), err
}

type keyPair struct{ priv, pub string }

func newKeyPair(t *testing.T) keyPair {
	k, err := noise.NewPrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{k.String(), k.PublicKey().String()}
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestE2EWgSetShowDump(t *testing.T) {
	needWG(t)
	ifc, dev := startE2E(t)
	me, p1, p2 := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	psk := newKeyPair(t).priv
	wg(t, "set", ifc, "private-key", writeFile(t, "k", me.priv), "listen-port", "51820", "fwmark", "0x20",
		"peer", p1.pub, "preshared-key", writeFile(t, "psk", psk), "endpoint", "198.18.0.2:51821",
		"persistent-keepalive", "25", "allowed-ips", "198.18.1.0/24,fd00:1::/64")
	want := ifc + "\t" + me.priv + "\t" + me.pub + "\t51820\t0x20\n" +
		ifc + "\t" + p1.pub + "\t" + psk + "\t198.18.0.2:51821\t198.18.1.0/24,fd00:1::/64\t0\t0\t0\t25\n"
	if got := wg(t, "show", "all", "dump"); !strings.Contains(got, want) {
		t.Fatalf("wg show all dump:\n%s\nwant lines:\n%s", got, want)
	}
	wg(t, "set", ifc, "peer", p1.pub, "allowed-ips", "198.18.2.0/24", "persistent-keepalive", "off",
		"peer", p2.pub, "endpoint", "[fd00::2]:7", "allowed-ips", "198.18.1.0/24")
	want = me.priv + "\t" + me.pub + "\t51820\t0x20\n" +
		p1.pub + "\t" + psk + "\t198.18.0.2:51821\t198.18.2.0/24\t0\t0\t0\toff\n" +
		p2.pub + "\t(none)\t[fd00::2]:7\t198.18.1.0/24\t0\t0\t0\toff\n"
	if got := wg(t, "show", ifc, "dump"); got != want {
		t.Fatalf("after update:\n%s\nwant:\n%s", got, want)
	}
	// What the engine reports after a handshake reaches wg's fields.
	hs := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	dev.setStats(pubFromB64(t, p2.pub), func(p *device.PeerInfo) {
		p.LastHandshake, p.RxBytes, p.TxBytes = hs, 1000, 2000
	})
	if got := wg(t, "show", ifc, "latest-handshakes"); !strings.Contains(got, fmt.Sprintf("%s\t%d\n", p2.pub, hs.Unix())) {
		t.Errorf("latest-handshakes: %q", got)
	}
	if got := wg(t, "show", ifc, "transfer"); !strings.Contains(got, p2.pub+"\t1000\t2000\n") {
		t.Errorf("transfer: %q", got)
	}
	if got := wg(t, "show", ifc); !strings.Contains(got, "latest handshake: 5 seconds ago") {
		t.Errorf("wg show: %s", got)
	}
	wg(t, "set", ifc, "fwmark", "off", "peer", p1.pub, "remove")
	if got := wg(t, "show", ifc, "peers"); got != p2.pub+"\n" {
		t.Errorf("after remove: %q", got)
	}
	if got := wg(t, "show", ifc, "fwmark"); got != "off\n" {
		t.Errorf("fwmark: %q", got)
	}
	dev.setBusyPort(4444)
	if out, err := wgErr("set", ifc, "listen-port", "4444"); err == nil || !strings.Contains(out, "Address already in use") {
		t.Errorf("busy port: %v %s", err, out)
	}
	if got := wg(t, "show", "interfaces"); !strings.Contains(" "+strings.TrimSpace(got)+" ", " "+ifc+" ") {
		t.Errorf("wg show interfaces: %q", got)
	}
}

func pubFromB64(t *testing.T, s string) noise.PublicKey {
	k, err := noise.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestE2EWgConfFiles(t *testing.T) {
	needWG(t)
	ifc, _ := startE2E(t)
	me, p1, p2, p3 := newKeyPair(t), newKeyPair(t), newKeyPair(t), newKeyPair(t)
	conf := "[Interface]\nListenPort = 51820\nFwMark = 0x1\nPrivateKey = " + me.priv + "\n\n" +
		"[Peer]\nPublicKey = " + p1.pub + "\nPresharedKey = " + p3.priv + "\nAllowedIPs = 198.18.1.0/24, fd00:1::/64\nEndpoint = 198.18.0.2:51820\nPersistentKeepalive = 25\n\n" +
		"[Peer]\nPublicKey = " + p2.pub + "\nAllowedIPs = 198.18.2.0/24\nEndpoint = [fd00::2]:51820\n"
	wg(t, "setconf", ifc, writeFile(t, "a.conf", conf))
	shown := wg(t, "showconf", ifc)
	if shown != conf {
		t.Fatalf("showconf:\n%s\nwant:\n%s", shown, conf)
	}
	wg(t, "setconf", ifc, writeFile(t, "b.conf", shown))
	if again := wg(t, "showconf", ifc); again != conf {
		t.Fatalf("setconf(showconf) changed the device:\n%s", again)
	}
	add := "[Peer]\nPublicKey = " + p3.pub + "\nAllowedIPs = 198.18.3.0/24\n"
	wg(t, "addconf", ifc, writeFile(t, "c.conf", add))
	if got := wg(t, "show", ifc, "peers"); got != p1.pub+"\n"+p2.pub+"\n"+p3.pub+"\n" {
		t.Fatalf("after addconf: %q", got)
	}
	// syncconf removes p1 and p3, keeps p2 with a new allowed IP.
	sync := "[Interface]\nListenPort = 51820\nPrivateKey = " + me.priv + "\n\n[Peer]\nPublicKey = " + p2.pub + "\nAllowedIPs = 198.18.4.0/24\n"
	wg(t, "syncconf", ifc, writeFile(t, "d.conf", sync))
	if got := wg(t, "show", ifc, "allowed-ips"); got != p2.pub+"\t198.18.4.0/24\n" {
		t.Fatalf("after syncconf: %q", got)
	}
	// setconf replaces everything.
	wg(t, "setconf", ifc, writeFile(t, "e.conf", "[Interface]\nPrivateKey = "+me.priv+"\n"))
	if got := wg(t, "show", ifc, "peers"); got != "" {
		t.Fatalf("after setconf without peers: %q", got)
	}
}

// TestE2ERawBadLineChangesNothing uses the real socket path: a set with a
// bad line in the middle leaves the device byte-identical in wg's eyes.
func TestE2ERawBadLineChangesNothing(t *testing.T) {
	needWG(t)
	ifc, _ := startE2E(t)
	p1 := newKeyPair(t)
	wg(t, "set", ifc, "listen-port", "1000", "peer", p1.pub, "allowed-ips", "198.18.1.0/24,198.18.9.0/24")
	before := wg(t, "show", ifc, "dump")
	c, err := net.Dial("unix", SocketPath(ifc))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := pubFromB64(t, p1.pub).Hex()
	io.WriteString(c, "set=1\nlisten_port=2000\npublic_key="+k+"\nallowed_ip=-198.18.9.0/24\nallowed_ip=198.18.5.0/24\npersistent_keepalive_interval=x\n\n")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, buf, len("errno=-22\n\n"))
	if string(buf[:n]) != "errno=-22\n\n" {
		t.Fatalf("reply %q", buf[:n])
	}
	if after := wg(t, "show", ifc, "dump"); after != before {
		t.Fatalf("device changed:\n%s\nwas\n%s", after, before)
	}
	// The same request without the bad line: "-" removes one allowed IP.
	io.WriteString(c, "set=1\npublic_key="+k+"\nallowed_ip=-198.18.9.0/24\n\n")
	n, _ = io.ReadAtLeast(c, buf, len("errno=0\n\n"))
	if string(buf[:n]) != "errno=0\n\n" {
		t.Fatalf("reply %q", buf[:n])
	}
	if got := wg(t, "show", ifc, "allowed-ips"); got != p1.pub+"\t198.18.1.0/24\n" {
		t.Fatalf("after - removal: %q", got)
	}
}

func TestE2EWgctrl(t *testing.T) {
	ifc, _ := startE2E(t)
	c, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	priv, _ := wgtypes.GeneratePrivateKey()
	p1, _ := wgtypes.GeneratePrivateKey()
	p2, _ := wgtypes.GeneratePrivateKey()
	psk, _ := wgtypes.GenerateKey()
	port, mark, ka := 51820, 0x42, 25*time.Second
	_, n1, _ := net.ParseCIDR("198.18.1.0/24")
	_, n2, _ := net.ParseCIDR("fd00:1::/64")
	err = c.ConfigureDevice(ifc, wgtypes.Config{
		PrivateKey: &priv, ListenPort: &port, FirewallMark: &mark, ReplacePeers: true,
		Peers: []wgtypes.PeerConfig{
			{PublicKey: p1.PublicKey(), PresharedKey: &psk, Endpoint: &net.UDPAddr{IP: net.ParseIP("198.18.0.2"), Port: 9},
				PersistentKeepaliveInterval: &ka, ReplaceAllowedIPs: true, AllowedIPs: []net.IPNet{*n1, *n2}},
			{PublicKey: p2.PublicKey()},
			{PublicKey: priv.PublicKey(), UpdateOnly: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Device(ifc)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != wgtypes.Userspace || d.PrivateKey != priv || d.PublicKey != priv.PublicKey() || d.ListenPort != port || d.FirewallMark != mark || len(d.Peers) != 2 {
		t.Fatalf("device %+v", d)
	}
	got := d.Peers[0]
	if got.PublicKey != p1.PublicKey() || got.PresharedKey != psk || got.Endpoint.String() != "198.18.0.2:9" ||
		got.PersistentKeepaliveInterval != ka || len(got.AllowedIPs) != 2 || got.AllowedIPs[1].String() != "fd00:1::/64" || got.ProtocolVersion != 1 {
		t.Fatalf("peer %+v", got)
	}
	err = c.ConfigureDevice(ifc, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: p1.PublicKey(), Remove: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = c.Device(ifc); err != nil || len(d.Peers) != 1 || d.Peers[0].PublicKey != p2.PublicKey() {
		t.Fatalf("after remove: %+v %v", d, err)
	}
}
