package device

import (
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/noise"
	"github.com/wgdvpn/wgd/tun"
)

// fakeClock is an injected clock that tests move forward. Each reading
// advances it by a microsecond, so handshake timestamps stay strictly
// increasing as they would in real time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testNode is one device on a socketpair TUN; host is the test's end of
// the TUN, where it writes packets "from the host" and reads what the
// device delivers.
type testNode struct {
	dev   *Device
	host  *os.File
	priv  noise.PrivateKey
	pub   noise.PublicKey
	addr  netip.Addr // tunnel IPv4 address
	addr6 netip.Addr
}

func newTestNode(t *testing.T, clock Clock, n int) *testNode {
	t.Helper()
	return newTestNodeWorkers(t, clock, n, 2)
}

// newTestNodeWorkers is newTestNode with Options.Workers = workers
// (negative: the loop does all crypto itself).
func newTestNodeWorkers(t *testing.T, clock Clock, n, workers int) *testNode {
	t.Helper()
	return newTestNodeOpts(t, clock, n, Options{Workers: workers})
}

// newTestNodeOpts is newTestNode with the device options opts (its TUN and
// Clock are filled in here).
func newTestNodeOpts(t *testing.T, clock Clock, n int, opts Options) *testNode {
	t.Helper()
	dev, host, err := tun.NewSocketpair("wgdtest", 1420)
	if err != nil {
		t.Fatalf("socketpair TUN: %v", err)
	}
	opts.TUN, opts.Clock = dev, clock
	d, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	priv, err := noise.NewPrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(&Config{PrivateKey: &priv}); err != nil {
		t.Fatalf("Apply private key: %v", err)
	}
	node := &testNode{
		dev: d, host: host, priv: priv, pub: priv.PublicKey(),
		addr:  netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}),
		addr6: netip.MustParseAddr("fd00::" + string(rune('0'+n))),
	}
	t.Cleanup(func() {
		d.Close()
		host.Close()
	})
	return node
}

// connect makes a and b peers of each other over loopback (IPv4 or IPv6).
func connect(t *testing.T, a, b *testNode, loopback netip.Addr, keepalive uint16) {
	t.Helper()
	peerCfg := func(other *testNode) PeerConfig {
		ep := netip.AddrPortFrom(loopback, other.dev.Port())
		ka := keepalive
		return PeerConfig{
			PublicKey: other.pub,
			Endpoint:  &ep,
			AllowedIPs: []AllowedIPChange{
				{Prefix: netip.PrefixFrom(other.addr, 32)},
				{Prefix: netip.PrefixFrom(other.addr6, 128)},
			},
			PersistentKeepalive: &ka,
		}
	}
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{peerCfg(b)}}); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{peerCfg(a)}}); err != nil {
		t.Fatal(err)
	}
}

// udp4 builds an IPv4/UDP packet with payload.
func udp4(src, dst netip.Addr, payload []byte) []byte {
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64
	pkt[9] = 17
	s, d := src.As4(), dst.As4()
	copy(pkt[12:16], s[:])
	copy(pkt[16:20], d[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:20], 0))
	binary.BigEndian.PutUint16(pkt[20:], 1234)
	binary.BigEndian.PutUint16(pkt[22:], 5678)
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	return pkt
}

// udp6 builds an IPv6/UDP packet with payload.
func udp6(src, dst netip.Addr, payload []byte) []byte {
	pkt := make([]byte, 48+len(payload))
	pkt[0] = 0x60
	binary.BigEndian.PutUint16(pkt[4:], uint16(8+len(payload)))
	pkt[6] = 17
	pkt[7] = 64
	s, d := src.As16(), dst.As16()
	copy(pkt[8:24], s[:])
	copy(pkt[24:40], d[:])
	binary.BigEndian.PutUint16(pkt[40:], 1234)
	binary.BigEndian.PutUint16(pkt[42:], 5678)
	binary.BigEndian.PutUint16(pkt[44:], uint16(8+len(payload)))
	copy(pkt[48:], payload)
	return pkt
}

func (n *testNode) write(t *testing.T, pkt []byte) {
	t.Helper()
	if _, err := n.host.Write(pkt); err != nil {
		t.Fatalf("write to TUN: %v", err)
	}
}

// read returns the next packet the device wrote to its TUN, or nil after
// timeout.
func (n *testNode) read(t *testing.T, timeout time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 1<<16)
	if err := n.host.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	k, err := n.host.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:k]
}

// checkNoGoroutineLeak fails if goroutines started during the test are
// still running shortly after it ends.
func checkNoGoroutineLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if runtime.NumGoroutine() <= before {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		stacks := string(buf[:n])
		if strings.Contains(stacks, "device.") {
			t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), stacks)
		}
	})
}
