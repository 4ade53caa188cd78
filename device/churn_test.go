package device

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/noise"
)

// TestConfigChurnUnderTraffic changes the configuration while packets flow
// both ways: peers removed and re-added, allowed IPs replaced, keepalive
// toggled, the listen port rebound, the private key replaced and restored.
// Nothing may panic, deadlock or race (run under -race), and once the
// churn stops the tunnel must work again.
func TestConfigChurnUnderTraffic(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("before the churn")))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, dir := range [][2]*testNode{{a, b}, {b, a}} {
		src, dst := dir[0], dir[1]
		wg.Add(2)
		go func() { // sender: bounded in count and time
			defer wg.Done()
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = src.host.Write(udp4(src.addr, dst.addr, []byte("churn")))
				if i%32 == 31 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
		go func() { // drain what arrives so the socketpair never fills
			defer wg.Done()
			buf := make([]byte, 1<<16)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = dst.host.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				_, _ = dst.host.Read(buf)
			}
		}()
	}

	bPeer := func() PeerConfig {
		ep := netip.AddrPortFrom(lo4, b.dev.Port())
		return PeerConfig{PublicKey: b.pub, Endpoint: &ep, ReplaceAllowedIPs: true,
			AllowedIPs: []AllowedIPChange{{Prefix: netip.PrefixFrom(b.addr, 32)}, {Prefix: netip.PrefixFrom(b.addr6, 128)}}}
	}
	other, _ := noise.NewPrivateKey(nil)
	for i := range 40 {
		apply := func(n *testNode, cfg *Config) {
			t.Helper()
			if err := n.dev.Apply(cfg); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
		switch i % 5 {
		case 0:
			apply(a, &Config{Peers: []PeerConfig{{PublicKey: b.pub, Remove: true}}})
			apply(a, &Config{Peers: []PeerConfig{bPeer()}})
		case 1:
			ka := uint16(i % 2 * 25)
			apply(a, &Config{Peers: []PeerConfig{{PublicKey: b.pub, PersistentKeepalive: &ka}}})
		case 2:
			port := uint16(0)
			apply(b, &Config{ListenPort: &port})
			apply(a, &Config{Peers: []PeerConfig{bPeer()}})
		case 3:
			apply(b, &Config{PrivateKey: &other})
			apply(b, &Config{PrivateKey: &b.priv})
		case 4:
			apply(a, &Config{ReplacePeers: true, Peers: []PeerConfig{bPeer()}})
		}
		clock.Advance(noise.RekeyTimeout + time.Second)
		a.dev.loop.poll.wake()
		b.dev.loop.poll.wake()
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	// After the churn: a fresh exchange works (a handshake retry may be
	// needed; the fake clock moves it along).
	deadline := time.Now().Add(10 * time.Second)
	for {
		pkt := udp4(a.addr, b.addr, []byte("after the churn"))
		a.write(t, pkt)
		if got := b.read(t, 300*time.Millisecond); got != nil && string(got[28:]) == "after the churn" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnel did not recover; a %+v b %+v", a.dev.Counters(), b.dev.Counters())
		}
		clock.Advance(noise.RekeyTimeout + time.Second)
		a.dev.loop.poll.wake()
		b.dev.loop.poll.wake()
	}
}
