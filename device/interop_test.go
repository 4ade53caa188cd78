package device

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/wgdvpn/wgd/noise"
)

// wgGo is a wireguard-go device in this process, on a channel TUN and a
// real UDP socket: the reference implementation as a test oracle.
type wgGo struct {
	dev  *wgdevice.Device
	tun  *tuntest.ChannelTUN
	priv noise.PrivateKey
	pub  noise.PublicKey
	addr netip.Addr
	port uint16
}

func startWireGuardGo(t *testing.T, priv noise.PrivateKey, port uint16) *wgGo {
	t.Helper()
	ct := tuntest.NewChannelTUN()
	dev := wgdevice.NewDevice(ct.TUN(), wgconn.NewStdNetBind(), wgdevice.NewLogger(wgdevice.LogLevelError, "wireguard-go: "))
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", priv.Hex(), port)); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	g := &wgGo{dev: dev, tun: ct, priv: priv, pub: priv.PublicKey(), addr: netip.MustParseAddr("198.18.0.9")}
	get, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(get))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "listen_port="); ok {
			p, _ := strconv.Atoi(v)
			g.port = uint16(p)
		}
	}
	return g
}

func (g *wgGo) addPeer(t *testing.T, n *testNode) {
	t.Helper()
	cfg := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\n", n.pub.Hex(), n.dev.Port(), n.addr)
	if err := g.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
}

func (g *wgGo) read(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-g.tun.Inbound:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("wireguard-go delivered nothing")
		return nil
	}
}

func setupInterop(t *testing.T, clock *fakeClock) (*testNode, *wgGo) {
	t.Helper()
	n := newTestNode(t, clock, 1)
	priv, _ := noise.NewPrivateKey(nil)
	g := startWireGuardGo(t, priv, 0)
	t.Cleanup(g.dev.Close)
	g.addPeer(t, n)
	ep := netip.AddrPortFrom(lo4, g.port)
	err := n.dev.Apply(&Config{Peers: []PeerConfig{{
		PublicKey: g.pub, Endpoint: &ep,
		AllowedIPs: []AllowedIPChange{{Prefix: netip.PrefixFrom(g.addr, 32)}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return n, g
}

func TestInteropWeInitiate(t *testing.T) {
	n, g := setupInterop(t, newFakeClock())
	for i := range 20 {
		pkt := udp4(n.addr, g.addr, []byte(fmt.Sprintf("to wireguard-go %d", i)))
		n.write(t, pkt)
		if got := g.read(t); !bytes.Equal(got, pkt) {
			t.Fatalf("wireguard-go got %x, want %x", got, pkt)
		}
		back := udp4(g.addr, n.addr, []byte(fmt.Sprintf("from wireguard-go %d", i)))
		g.tun.Outbound <- back
		if got := n.read(t, 5*time.Second); !bytes.Equal(got, back) {
			t.Fatalf("we got %x, want %x", got, back)
		}
	}
}

func TestInteropTheyInitiateAndRestart(t *testing.T) {
	clock := newFakeClock()
	n, g := setupInterop(t, clock)
	back := udp4(g.addr, n.addr, []byte("wireguard-go speaks first"))
	g.tun.Outbound <- back
	if got := n.read(t, 5*time.Second); !bytes.Equal(got, back) {
		t.Fatalf("we got %x, want %x", got, back)
	}
	pkt := udp4(n.addr, g.addr, []byte("answer"))
	n.write(t, pkt)
	if got := g.read(t); !bytes.Equal(got, pkt) {
		t.Fatalf("wireguard-go got %x", got)
	}

	// wireguard-go restarts on the same port with the same key and has lost
	// its sessions. Our data goes unanswered; after KEEPALIVE_TIMEOUT +
	// REKEY_TIMEOUT we start a new handshake and traffic recovers.
	port := g.port
	g.dev.Close()
	g2 := startWireGuardGo(t, g.priv, port)
	t.Cleanup(g2.dev.Close)
	g2.addPeer(t, n)
	n.write(t, udp4(n.addr, g.addr, []byte("lost in the restart")))
	time.Sleep(50 * time.Millisecond)
	clock.Advance(noise.KeepaliveTimeout + noise.RekeyTimeout + time.Second)
	n.dev.loop.poll.wake()
	waitFor(t, "new handshake after the restart", func() bool { return n.dev.Counters().HandshakesDone >= 2 })
	pkt = udp4(n.addr, g.addr, []byte("after restart"))
	n.write(t, pkt)
	if got := g2.read(t); !bytes.Equal(got, pkt) {
		t.Fatalf("restarted wireguard-go got %x", got)
	}
}
