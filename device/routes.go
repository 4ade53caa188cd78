package device

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Routes is how the device follows the host's routing, so that a peer's
// sticky local address does not outlive the route it was learned on.
type Routes interface {
	// Subscribe sends on ch after changes to the routing tables until done
	// is closed. Sends may be dropped while ch is full: one pending
	// notice is enough.
	Subscribe(ch chan<- struct{}, done <-chan struct{}) error
	// Oif is the index of the interface a packet to dst carrying mark
	// leaves by (0 and an error when there is no route).
	Oif(dst netip.Addr, mark uint32) (int, error)
}

// hostRoutes is Routes over rtnetlink in the device's network namespace.
type hostRoutes struct{}

func (hostRoutes) Subscribe(ch chan<- struct{}, done <-chan struct{}) error {
	updates := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{}); err != nil {
		return fmt.Errorf("subscribe to route changes: %w", err)
	}
	go func() {
		for range updates { // closed when done is, or the socket fails
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return nil
}

func (hostRoutes) Oif(dst netip.Addr, mark uint32) (int, error) {
	routes, err := netlink.RouteGetWithOptions(net.IP(dst.AsSlice()), &netlink.RouteGetOptions{Mark: mark})
	if err != nil {
		return 0, err
	}
	if len(routes) == 0 {
		return 0, unix.ENETUNREACH
	}
	return routes[0].LinkIndex, nil
}

// watchRoutes runs until the device closes: after each change to the
// routing tables it lets every peer forget a sticky local address learned
// on an interface its endpoint is no longer routed through, so that the
// next packet leaves by the new route from an address the kernel picks
// (and the peer roams to it). wireguard-go does the same. Without it a
// peer with two uplinks kept sending from the address of the one that went
// away (or, once it came back, from the other one) until a handshake timer
// cleared the source: 15 s of loss behind a router that checks source
// addresses.
func (d *Device) watchRoutes(r Routes) {
	ch := make(chan struct{}, 1)
	if err := r.Subscribe(ch, d.closed); err != nil {
		d.log.Info("not following route changes; sticky source addresses are kept until a send fails or a handshake is retried", "err", err)
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-d.closed:
				return
			case <-ch:
				d.recheckSources(r)
			}
		}
	}()
}

// recheckSources does watchRoutes' check once, for the peers that have a
// sticky source (only those can be wrong).
func (d *Device) recheckSources(r Routes) {
	d.cfgMu.Lock()
	mark := d.fwmark
	d.cfgMu.Unlock()
	var sticky []*Peer
	d.peersMu.RLock()
	for p := d.peerList.head; p != nil; p = p.nextInList {
		if ep := p.endpointCopy(); ep.Src.IsValid() && ep.Ifindex != 0 && !ep.Dst.Addr().IsLinkLocalUnicast() {
			sticky = append(sticky, p)
		}
	}
	d.peersMu.RUnlock()
	for _, p := range sticky {
		select {
		case <-d.closed:
			return
		default:
		}
		ep := p.endpointCopy()
		if !ep.Src.IsValid() || ep.Ifindex == 0 {
			continue
		}
		oif, err := r.Oif(ep.Dst.Addr(), mark)
		if err == nil && oif == int(ep.Ifindex) {
			continue
		}
		p.mu.Lock()
		cleared := p.endpoint.Src == ep.Src && p.endpoint.Ifindex == ep.Ifindex
		if cleared {
			p.endpoint.ClearSource()
		}
		p.mu.Unlock()
		if cleared {
			d.log.Debug("route to peer changed, sending from the kernel's choice of address", "peer", p.short(), "endpoint", ep.Dst, "was", ep.Src)
		}
	}
}
