package netcfg

import (
	"net/netip"
	"testing"
)

// TestE2EAutoMTU checks wg-quick's MTU rule against routes in a namespace.
func TestE2EAutoMTU(t *testing.T) {
	n := newTestNS(t)
	if got := n.r.autoMTU(nil, 0); got != 1420 {
		t.Errorf("no routes: %d, want 1420", got)
	}
	under := n.addLink("under0")
	n.h.LinkSetMTU(under, 9000)
	n.h.LinkSetUp(under)
	n.ip("addr", "add", "198.18.10.1/24", "dev", "under0")
	n.ip("route", "add", "198.18.20.0/24", "dev", "under0", "mtu", "1400")
	ep := []netip.Addr{netip.MustParseAddr("198.18.10.2")}
	if got := n.r.autoMTU(ep, 0); got != 8920 {
		t.Errorf("endpoint via 9000 link: %d, want 8920", got)
	}
	both := append(ep, netip.MustParseAddr("198.18.20.2"))
	if got := n.r.autoMTU(both, 0); got != 8920 {
		t.Errorf("largest of 9000 and route mtu 1400: %d, want 8920", got)
	}
	if got := n.r.autoMTU(both[1:], 0); got != 1320 {
		t.Errorf("route mtu 1400: %d, want 1320", got)
	}
	if got := n.r.autoMTU(nil, 0); got != 1420 {
		t.Errorf("no default route: %d, want 1420", got)
	}
	n.ip("route", "add", "default", "dev", "under0")
	if got := n.r.autoMTU(nil, 0); got != 8920 {
		t.Errorf("default via 9000 link: %d, want 8920", got)
	}
}
