package device

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/noise"
)

// TestHandshakeFloodGetsCookies floods a device with initiations that have
// a valid mac1 but come from unknown keys: past the backlog threshold the
// device answers with cookie replies instead of doing Diffie-Hellman, and a
// legitimate peer still completes its handshake and passes traffic.
func TestHandshakeFloodGetsCookies(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)

	attacker, target := newAttacker(t, b)
	msgs := make([][]byte, 32)
	for i := range msgs {
		priv, _ := noise.NewPrivateKey(nil)
		hs := noise.NewHandshake(noise.NewStatic(priv), b.pub, noise.PresharedKey{})
		var err error
		msgs[i], err = hs.CreateInitiation(nil, clock.Now(), uint32(i+1), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
	}
	cookies := make(chan int, 1)
	go func() {
		buf := make([]byte, 256)
		n := 0
		for {
			_ = attacker.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := attacker.ReadFromUDPAddrPort(buf)
			if err != nil {
				cookies <- n
				return
			}
			if k == noise.CookieReplySize && buf[0] == noise.TypeCookieReply {
				n++
			}
		}
	}()
	stop := time.Now().Add(3 * time.Second)
	sent := 0
	for sent < 30000 && time.Now().Before(stop) {
		_, _ = attacker.WriteToUDPAddrPort(msgs[sent%len(msgs)], target)
		sent++
		if sent%2000 == 0 {
			// The legitimate peer talks while the flood goes on.
			_, _ = a.host.Write(udp4(a.addr, b.addr, []byte("during the flood")))
		}
	}
	got := <-cookies
	if got == 0 {
		t.Fatalf("sent %d flood initiations, got no cookie reply (counters %+v)", sent, b.dev.Counters())
	}
	t.Logf("flood: %d initiations sent, %d cookie replies, counters %+v", sent, got, b.dev.Counters())
	// Retries after REKEY_TIMEOUT carry mac2 from the cookie if one came.
	clock.Advance(noise.RekeyTimeout + time.Second)
	a.dev.loop.poll.wake()
	for a.read(t, 10*time.Millisecond) != nil {
	}
	for b.read(t, 10*time.Millisecond) != nil {
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pkt := udp4(a.addr, b.addr, []byte("after the flood"))
		a.write(t, pkt)
		if got := b.read(t, 500*time.Millisecond); got != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("legitimate peer never got through; a %+v b %+v", a.dev.Counters(), b.dev.Counters())
		}
		clock.Advance(noise.RekeyTimeout + time.Second)
		a.dev.loop.poll.wake()
	}
}

// TestEstablishedPeerPassesDataDuringFlood: a peer with a session keeps
// passing data while a handshake flood goes on (data messages never wait
// behind handshake work).
func TestEstablishedPeerPassesDataDuringFlood(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("session up")))

	attacker, target := newAttacker(t, b)
	priv, _ := noise.NewPrivateKey(nil)
	hs := noise.NewHandshake(noise.NewStatic(priv), b.pub, noise.PresharedKey{})
	flood, err := hs.CreateInitiation(nil, clock.Now(), 1, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	floodDone := make(chan int)
	go func() {
		sent := 0
		deadline := time.Now().Add(5 * time.Second)
		for sent < 1000000 && time.Now().Before(deadline) {
			select {
			case <-stop:
				floodDone <- sent
				return
			default:
			}
			_, _ = attacker.WriteToUDPAddrPort(flood, target)
			sent++
		}
		floodDone <- sent
	}()
	const n = 20
	delivered := 0
	for i := range n {
		pkt := udp4(a.addr, b.addr, []byte{'d', 'u', 'r', 'i', 'n', 'g', byte(i)})
		a.write(t, pkt)
		if got := b.read(t, time.Second); bytes.Equal(got, pkt) {
			delivered++
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	sent := <-floodDone
	c := b.dev.Counters()
	t.Logf("%d of %d data packets delivered during a flood of %d initiations; counters %+v", delivered, n, sent, c)
	if c.InvalidMAC2+c.UnknownPeer+c.HandshakeBacklog+c.RateLimited == 0 {
		t.Fatalf("the flood did not reach the handshake path")
	}
	if delivered < n-2 {
		t.Fatalf("only %d of %d data packets got through during the flood", delivered, n)
	}
}

// newAttacker is a UDP socket on loopback, closed at cleanup, aimed at
// node n's port.
func newAttacker(t *testing.T, n *testNode) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, netip.AddrPortFrom(lo4, n.dev.Port())
}
