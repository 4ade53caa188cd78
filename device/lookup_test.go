package device

import (
	"net/netip"
	"testing"

	"github.com/wgdvpn/wgd/device/allowedips"
)

func TestLookupCache(t *testing.T) {
	var tbl allowedips.Table[*Peer]
	a, b := &Peer{}, &Peer{}
	if err := tbl.Insert(netip.MustParsePrefix("198.18.0.0/24"), a); err != nil {
		t.Fatal(err)
	}
	var c lookupCache
	ip := netip.MustParseAddr("198.18.0.7")
	if p, ok := c.lookup(&tbl, ip); !ok || p != a {
		t.Fatalf("first lookup = %p, %v; want a", p, ok)
	}
	if p, ok := c.lookup(&tbl, netip.MustParseAddr("198.19.0.7")); ok {
		t.Fatalf("lookup outside the table = %p, true", p)
	}
	// A miss is not cached: the hit before it still serves.
	if err := tbl.Insert(netip.MustParsePrefix("198.18.0.7/32"), b); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.lookup(&tbl, ip); p != a {
		t.Fatalf("within a batch the cached peer serves, got %p", p)
	}
	if p, _ := c.lookup(&tbl, netip.MustParseAddr("::ffff:198.18.0.7")); p == a {
		t.Fatal("an IPv4-mapped IPv6 address hit the IPv4 entry")
	}
	c.reset()
	if p, ok := c.lookup(&tbl, ip); !ok || p != b {
		t.Fatalf("after reset lookup = %p, %v; want b", p, ok)
	}
}
