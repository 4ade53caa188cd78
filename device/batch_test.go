package device

import (
	"net/netip"
	"testing"

	"github.com/wgdvpn/wgd/tun"
)

// tcpHeaderOnly builds an IPv4 or IPv6 packet whose protocol is TCP, with
// a bare 20-byte TCP header: enough for allTCP, which reads only the IP
// header.
func tcpHeaderOnly(src, dst netip.Addr) []byte {
	if src.Is4() {
		pkt := udp4(src, dst, make([]byte, 12))
		pkt[9] = protoTCP
		return pkt
	}
	pkt := udp6(src, dst, make([]byte, 12))
	pkt[6] = protoTCP
	return pkt
}

func TestAllTCP(t *testing.T) {
	a4, b4 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	a6, b6 := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	tcp4, tcp6 := tcpHeaderOnly(a4, b4), tcpHeaderOnly(a6, b6)
	u4, u6 := udp4(a4, b4, []byte("x")), udp6(a6, b6, []byte("x"))
	for _, c := range []struct {
		name string
		pkts [][]byte
		want bool
	}{
		{"none", nil, false},
		{"tcp4", [][]byte{tcp4, tcp4}, true},
		{"tcp6", [][]byte{tcp6}, true},
		{"both families", [][]byte{tcp4, tcp6}, true},
		{"udp4 after tcp", [][]byte{tcp4, u4}, false},
		{"udp6 first", [][]byte{u6, tcp6}, false},
	} {
		if got := allTCP(c.pkts); got != c.want {
			t.Errorf("%s: allTCP = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestDecryptBatch: decrypt jobs grow to tcpBatch only after a job of
// nothing but TCP, and only where the loop opens them itself; with crypto
// workers they stay small so that workers share a burst.
func TestDecryptBatch(t *testing.T) {
	for _, c := range []struct {
		workers int
		tcpOnly bool
		want    int
	}{
		{0, false, batchSize},
		{0, true, tcpBatch},
		{4, true, batchSize},
		{4, false, batchSize},
	} {
		l := &loop{d: &Device{workers: &workerPool{n: c.workers}}, tcpOnly: c.tcpOnly}
		if got := l.decryptBatch(); got != c.want {
			t.Errorf("workers %d, tcpOnly %v: decryptBatch = %d, want %d", c.workers, c.tcpOnly, got, c.want)
		}
	}
	// A job of tcpBatch-1 packets plus one coalesced datagram of the most
	// segments the kernel gives must fit the TUN writer's window, or its
	// merging would be cut there again.
	if tcpBatch-1+64 > tun.WriteWindow {
		t.Errorf("tcpBatch %d overflows the %d-packet write window", tcpBatch, tun.WriteWindow)
	}
}
