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

	"github.com/wgdvpn/wgd/device/conn"
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

// setupInterop connects one of our devices to wireguard-go. noUDPOffload
// keeps our UDP GSO and GRO off; wireguard-go's bind uses them wherever the
// kernel has them, so both ways are tested against a peer that does.
func setupInterop(t *testing.T, clock *fakeClock, noUDPOffload bool) (*testNode, *wgGo) {
	t.Helper()
	n := newTestNodeOpts(t, clock, 1, Options{Workers: 2, NoUDPOffload: noUDPOffload})
	gso, gro := n.dev.bind.Offloads()
	if noUDPOffload && (gso || gro) {
		t.Fatalf("UDP offloads on (gso %v, gro %v) with NoUDPOffload", gso, gro)
	}
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

// forEachOffload runs f with our UDP offloads on and off.
func forEachOffload(t *testing.T, f func(t *testing.T, noUDPOffload bool)) {
	for _, off := range []bool{false, true} {
		name := "udp-offloads"
		if off {
			name = "no-udp-offloads"
		}
		t.Run(name, func(t *testing.T) { f(t, off) })
	}
}

func TestInteropWeInitiate(t *testing.T) {
	forEachOffload(t, testInteropWeInitiate)
}

func testInteropWeInitiate(t *testing.T, noUDPOffload bool) {
	n, g := setupInterop(t, newFakeClock(), noUDPOffload)
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
	// Nothing is lost on loopback, so each side's tx_bytes is the other's
	// rx_bytes: both count the same messages (handshakes included) the
	// same way.
	waitFor(t, "transfer counters to agree", func() bool {
		ourTx, ourRx := ourTransfer(t, n, g.pub)
		theirTx, theirRx := wgGoTransfer(t, g, n.pub)
		return ourTx == theirRx && ourRx == theirTx && ourTx > 0 && ourRx > 0
	})
}

// ourTransfer returns tx and rx bytes of our peer pub.
func ourTransfer(t *testing.T, n *testNode, pub noise.PublicKey) (tx, rx uint64) {
	t.Helper()
	if err := n.dev.Visit(func(Info) {}, func(p *PeerInfo) {
		if p.PublicKey == pub {
			tx, rx = p.TxBytes, p.RxBytes
		}
	}); err != nil {
		t.Fatal(err)
	}
	return tx, rx
}

// wgGoTransfer returns wireguard-go's tx and rx bytes for its peer pub.
func wgGoTransfer(t *testing.T, g *wgGo, pub noise.PublicKey) (tx, rx uint64) {
	t.Helper()
	get, err := g.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for line := range strings.Lines(get) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case k == "public_key":
			in = v == pub.Hex()
		case in && k == "tx_bytes":
			tx, _ = strconv.ParseUint(v, 10, 64)
		case in && k == "rx_bytes":
			rx, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	return tx, rx
}

// TestInteropBursts sends bursts both ways, so that batches leave as UDP
// GSO datagrams (ours and wireguard-go's) and arrive coalesced by UDP GRO
// where it is on: every packet must come through, in order, unchanged.
func TestInteropBursts(t *testing.T) {
	forEachOffload(t, func(t *testing.T, noUDPOffload bool) {
		n, g := setupInterop(t, newFakeClock(), noUDPOffload)
		first := udp4(n.addr, g.addr, []byte("handshake"))
		n.write(t, first)
		if got := g.read(t); !bytes.Equal(got, first) {
			t.Fatalf("wireguard-go got %x", got)
		}
		const burst = 200
		payload := func(dir string, i int) []byte {
			return []byte(fmt.Sprintf("%s %04d %s", dir, i, bytes.Repeat([]byte{'x'}, 1000)))
		}
		for i := range burst {
			n.write(t, udp4(n.addr, g.addr, payload("out", i)))
		}
		for i := range burst {
			if want, got := udp4(n.addr, g.addr, payload("out", i)), g.read(t); !bytes.Equal(got, want) {
				t.Fatalf("outbound packet %d: wireguard-go got %q, want %q", i, got[28:38], want[28:38])
			}
		}
		go func() {
			for i := range burst {
				g.tun.Outbound <- udp4(g.addr, n.addr, payload("in", i))
			}
		}()
		for i := range burst {
			want, got := udp4(g.addr, n.addr, payload("in", i)), n.read(t, 5*time.Second)
			if !bytes.Equal(got, want) {
				t.Fatalf("inbound packet %d: we got %d bytes %q, want %q", i, len(got), got[min(len(got), 28):min(len(got), 38)], want[28:38])
			}
		}
		// With offloads on, our burst must have left as GSO datagrams
		// (wireguard-go reads them through its GRO bind); off, never. The
		// other way wireguard-go does not batch (its channel TUN hands it
		// one packet per read), so our GRO sees nothing to coalesce here;
		// the netns tests cover it between real TUNs.
		st := n.dev.bind.Stats()
		gso, gro := n.dev.bind.Offloads()
		t.Logf("gso %v gro %v: %d GSO datagrams sent, %d GRO datagrams received", gso, gro, st.GSODatagrams, st.GRODatagrams)
		if noUDPOffload && st != (conn.Stats{}) {
			t.Errorf("offloads off, yet %+v", st)
		}
		if gso && st.GSODatagrams == 0 {
			t.Errorf("GSO on, but a burst of %d packets left without it", burst)
		}
	})
}

func TestInteropTheyInitiateAndRestart(t *testing.T) {
	forEachOffload(t, testInteropTheyInitiateAndRestart)
}

func testInteropTheyInitiateAndRestart(t *testing.T, noUDPOffload bool) {
	clock := newFakeClock()
	n, g := setupInterop(t, clock, noUDPOffload)
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
