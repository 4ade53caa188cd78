package noise

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// Tunnel addresses inside the interop tests (benchmarking range).
var (
	ourTunnelIP = netip.MustParseAddr("198.18.0.1")
	wgTunnelIP  = netip.MustParseAddr("198.18.0.2")
)

// wgPeer is a wireguard-go device on a channel TUN and a loopback UDP bind,
// and our side of the conversation: our identity and a plain UDP socket.
type wgPeer struct {
	t      *testing.T
	dev    *device.Device
	tun    *tuntest.ChannelTUN
	wgAddr *net.UDPAddr
	sock   *net.UDPConn
	us     *Static
	wgPub  PublicKey
	hs     *Handshake
	rand   *detRand
}

// newWGPeer starts wireguard-go with key material for both sides; ourPSK
// and wgPSK differ in the wrong-PSK tests.
func newWGPeer(t *testing.T, ourPSK, wgPSK PresharedKey) *wgPeer {
	t.Helper()
	r := newDetRand(byte(len(t.Name())))
	ourPriv, _ := NewPrivateKey(r)
	wgPriv, _ := NewPrivateKey(r)
	p := &wgPeer{t: t, us: NewStatic(ourPriv), wgPub: wgPriv.PublicKey(), rand: r}
	p.hs = NewHandshake(p.us, p.wgPub, ourPSK)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p.sock = sock
	t.Cleanup(func() { sock.Close() })

	p.tun = tuntest.NewChannelTUN()
	p.dev = device.NewDevice(p.tun.TUN(), conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\npreshared_key=%s\nendpoint=%s\nallowed_ip=%s/32\n",
		wgPriv.Hex(), p.us.Public().Hex(), wgPSK.Hex(), sock.LocalAddr(), ourTunnelIP)
	if err := p.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := p.dev.Up(); err != nil {
		t.Fatal(err)
	}
	p.wgAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.listenPort()}
	return p
}

// listenPort reads the port wireguard-go bound from its UAPI state.
func (p *wgPeer) listenPort() int {
	state, err := p.dev.IpcGet()
	if err != nil {
		p.t.Fatal(err)
	}
	for line := range strings.SplitSeq(state, "\n") {
		var port int
		if _, err := fmt.Sscanf(line, "listen_port=%d", &port); err == nil {
			return port
		}
	}
	p.t.Fatal("no listen_port in IpcGet")
	return 0
}

func (p *wgPeer) send(msg []byte) {
	if _, err := p.sock.WriteToUDP(msg, p.wgAddr); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram of type typ, skipping others, or nil after d.
func (p *wgPeer) recv(typ uint32, d time.Duration) []byte {
	deadline := time.Now().Add(d)
	buf := make([]byte, 2048)
	for {
		p.sock.SetReadDeadline(deadline)
		n, _, err := p.sock.ReadFromUDP(buf)
		if err != nil {
			return nil
		}
		if t, err := MessageType(buf[:n]); err == nil && t == typ {
			return bytes.Clone(buf[:n])
		}
	}
}

// delivered waits for a packet on wireguard-go's TUN, nil after d.
func (p *wgPeer) delivered(d time.Duration) []byte {
	select {
	case pkt := <-p.tun.Inbound:
		return pkt
	case <-time.After(d):
		return nil
	}
}

// sealTo encrypts an IPv4 packet to wireguard-go and sends it.
func (p *wgPeer) sealTo(kp *Keypair, pkt []byte) {
	c, ok := kp.NextCounter()
	if !ok {
		p.t.Fatal("counter exhausted")
	}
	p.send(kp.Seal(make([]byte, 0, 2048), c, pkt, 1420))
}

// openFrom waits for a data message, opens it and returns the packet cut
// to its IPv4 total length (the rest is padding).
func (p *wgPeer) openFrom(kp *Keypair) []byte {
	p.t.Helper()
	for range 5 {
		msg := p.recv(TypeTransport, 3*time.Second)
		if msg == nil {
			p.t.Fatal("no data message from wireguard-go")
		}
		pt, _, err := kp.Open(msg[TransportHeaderSize:TransportHeaderSize], msg)
		if err != nil {
			p.t.Fatalf("open: %v", err)
		}
		if len(pt) == 0 {
			continue // keepalive
		}
		if len(pt) < 20 || int(binary.BigEndian.Uint16(pt[2:])) > len(pt) {
			p.t.Fatalf("not an IPv4 packet: %x", pt)
		}
		return pt[:binary.BigEndian.Uint16(pt[2:])]
	}
	p.t.Fatal("only keepalives")
	return nil
}

func (p *wgPeer) close() { p.dev.Close() }

// checkGoroutines fails if goroutines started during the test outlive it.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
}

// TestInteropWireGuardGoInitiator: we initiate, wireguard-go responds.
func TestInteropWireGuardGoInitiator(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWGPeer(t, PresharedKey{7}, PresharedKey{7})
	now := time.Now()
	init, err := p.hs.CreateInitiation(nil, now, 0x1234, p.rand)
	if err != nil {
		t.Fatal(err)
	}
	p.send(init)
	resp := p.recv(TypeResponse, 3*time.Second)
	if resp == nil {
		t.Fatal("no response from wireguard-go")
	}
	if err := p.hs.ConsumeResponse(resp, now); err != nil {
		t.Fatal(err)
	}
	kp, err := p.hs.DeriveKeypair(now)
	if err != nil {
		t.Fatal(err)
	}
	ping := tuntest.Ping(wgTunnelIP, ourTunnelIP)
	p.sealTo(kp, ping)
	if got := p.delivered(3 * time.Second); !bytes.Equal(got, ping) {
		t.Fatalf("wireguard-go delivered %x, want %x", got, ping)
	}
	reply := tuntest.Ping(ourTunnelIP, wgTunnelIP)
	p.tun.Outbound <- reply
	if got := p.openFrom(kp); !bytes.Equal(got, reply) {
		t.Fatalf("opened %x, want %x", got, reply)
	}
	p.close()
	checkGoroutines(t, before)
}

// respond answers one initiation from wireguard-go as the responder.
func (p *wgPeer) respond(init []byte, now time.Time) (*Keypair, error) {
	cc := NewCookieChecker(p.us.Public(), p.rand)
	if err := cc.CheckMAC1(init); err != nil {
		return nil, err
	}
	res, err := p.us.OpenInitiation(init)
	if err != nil {
		return nil, err
	}
	if err := p.hs.ConsumeInitiation(res, now); err != nil {
		return nil, err
	}
	resp, err := p.hs.CreateResponse(nil, now, 0x5678, p.rand)
	if err != nil {
		return nil, err
	}
	p.send(resp)
	return p.hs.DeriveKeypair(now)
}

// TestInteropWireGuardGoResponder: wireguard-go initiates, we respond.
func TestInteropWireGuardGoResponder(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWGPeer(t, PresharedKey{8}, PresharedKey{8})
	first := tuntest.Ping(ourTunnelIP, wgTunnelIP)
	p.tun.Outbound <- first // wireguard-go has no session: it initiates
	init := p.recv(TypeInitiation, 3*time.Second)
	if init == nil {
		t.Fatal("no initiation from wireguard-go")
	}
	kp, err := p.respond(init, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.openFrom(kp); !bytes.Equal(got, first) {
		t.Fatalf("opened %x, want %x", got, first)
	}
	back := tuntest.Ping(wgTunnelIP, ourTunnelIP)
	p.sealTo(kp, back)
	if got := p.delivered(3 * time.Second); !bytes.Equal(got, back) {
		t.Fatalf("wireguard-go delivered %x, want %x", got, back)
	}
	p.close()
	checkGoroutines(t, before)
}

// TestInteropWireGuardGoRejects: a wrong PSK and a wrong mac1 fail on both sides.
func TestInteropWireGuardGoRejects(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("wrong psk, we initiate", func(t *testing.T) {
		p := newWGPeer(t, PresharedKey{1}, PresharedKey{2})
		defer p.close()
		init, _ := p.hs.CreateInitiation(nil, time.Now(), 1, p.rand)
		p.send(init)
		resp := p.recv(TypeResponse, 3*time.Second)
		if resp == nil {
			t.Fatal("no response")
		}
		if err := p.hs.ConsumeResponse(resp, time.Now()); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("got %v, want ErrDecrypt", err)
		}
	})
	t.Run("wrong psk, wireguard-go initiates", func(t *testing.T) {
		p := newWGPeer(t, PresharedKey{1}, PresharedKey{2})
		defer p.close()
		p.tun.Outbound <- tuntest.Ping(ourTunnelIP, wgTunnelIP)
		init := p.recv(TypeInitiation, 3*time.Second)
		kp, err := p.respond(init, time.Now())
		if err != nil {
			t.Fatal(err) // the psk enters only with the response
		}
		// wireguard-go drops our response: no data follows, ours is not delivered.
		if msg := p.recv(TypeTransport, 500*time.Millisecond); msg != nil {
			t.Fatal("wireguard-go accepted a response with the wrong psk")
		}
		p.sealTo(kp, tuntest.Ping(wgTunnelIP, ourTunnelIP))
		if got := p.delivered(500 * time.Millisecond); got != nil {
			t.Fatal("wireguard-go delivered data under a wrong psk")
		}
	})
	t.Run("wrong mac1", func(t *testing.T) {
		p := newWGPeer(t, PresharedKey{}, PresharedKey{})
		defer p.close()
		p.tun.Outbound <- tuntest.Ping(ourTunnelIP, wgTunnelIP)
		theirs := p.recv(TypeInitiation, 3*time.Second)
		if theirs == nil {
			t.Fatal("no initiation from wireguard-go")
		}
		theirs[initOffMAC1] ^= 1
		if err := NewCookieChecker(p.us.Public(), p.rand).CheckMAC1(theirs); !errors.Is(err, ErrInvalidMAC1) {
			t.Fatalf("got %v, want ErrInvalidMAC1", err)
		}
		init, _ := p.hs.CreateInitiation(nil, time.Now(), 1, p.rand)
		init[initOffMAC1] ^= 1
		p.send(init)
		if resp := p.recv(TypeResponse, 500*time.Millisecond); resp != nil {
			t.Fatal("wireguard-go answered an initiation with a bad mac1")
		}
		init[initOffMAC1] ^= 1 // the same message, repaired, is answered
		p.send(init)
		if resp := p.recv(TypeResponse, 3*time.Second); resp == nil {
			t.Fatal("wireguard-go did not answer the repaired initiation")
		}
	})
	checkGoroutines(t, before)
}
