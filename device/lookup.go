package device

import (
	"net/netip"

	"github.com/wgdvpn/wgd/device/allowedips"
)

// lookupCache remembers the last allowed-IPs lookup of one batch: the
// segments of a TSO super-packet, and most packets of a batch, share their
// destination (sending) or source (receiving), so one trie walk serves
// them all. The loop resets it at the start of every batch, so a change to
// the table shows from the next batch on, as if the batch's lookups had all
// run at its start (a lookup is never ordered against a concurrent writer
// anyway). Misses are not cached.
type lookupCache struct {
	addr netip.Addr
	peer *Peer
}

func (c *lookupCache) reset() { *c = lookupCache{} }

// lookup returns the peer whose allowed IPs hold a.
func (c *lookupCache) lookup(t *allowedips.Table[*Peer], a netip.Addr) (*Peer, bool) {
	if c.peer != nil && c.addr == a {
		return c.peer, true
	}
	p, ok := t.Lookup(a)
	if ok {
		c.addr, c.peer = a, p
	}
	return p, ok
}
