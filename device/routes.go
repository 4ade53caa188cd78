package device

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device/conn"
)

// Routes is how the device follows the host's routing, so that a peer's
// sticky local address does not outlive the route it was learned on.
type Routes interface {
	// Subscribe sends on ch after changes to the routing tables until done
	// is closed. Sends may be dropped while ch is full: one pending
	// notice is enough.
	Subscribe(ch chan<- struct{}, done <-chan struct{}) error
	// Lookups returns oif for one recheck's route lookups, and done,
	// which frees what they share. oif is the index of the interface a
	// packet from src to dst carrying mark leaves by (0 and an error when
	// there is no route). The source takes part, as in the kernel
	// module's lookup, so that routing by source address (ip rule from
	// ..., IPv6 from routes) is followed.
	Lookups() (oif func(dst, src netip.Addr, mark uint32) (int, error), done func())
}

// hostRoutes is Routes over rtnetlink in the device's network namespace.
type hostRoutes struct {
	rcvbuf int // socket receive buffer; 0 means 1 MiB (tests shrink it)
}

// Subscribe listens on an rtnetlink socket bound to the IPv4 and IPv6
// route groups. The messages are not decoded: any of them, or ENOBUFS
// (the kernel dropped some because the socket was full, as in a burst of
// thousands of changes), means the tables changed. The socket is read
// through the runtime's poller, so closing it at done ends the reader.
func (h hostRoutes) Subscribe(ch chan<- struct{}, done <-chan struct{}) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("rtnetlink socket: %w", err)
	}
	rcvbuf := h.rcvbuf
	if rcvbuf == 0 {
		rcvbuf = 1 << 20
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf) // fewer ENOBUFS; best effort
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return fmt.Errorf("rtnetlink bind to the route groups: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	go func() {
		<-done
		f.Close()
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := f.Read(buf); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return // closed at done (or broken: nothing more to learn)
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return nil
}

// Lookups answers one recheck's lookups over one netlink socket (the
// package-level functions, the fallback, open one per request).
func (hostRoutes) Lookups() (oif func(dst, src netip.Addr, mark uint32) (int, error), done func()) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		h, done = nil, func() {}
	} else {
		done = h.Close
	}
	return func(dst, src netip.Addr, mark uint32) (int, error) { return oifWith(h, dst, src, mark) }, done
}

// oifWith looks the route up over h (nil: a socket of its own).
func oifWith(h *netlink.Handle, dst, src netip.Addr, mark uint32) (int, error) {
	opts := &netlink.RouteGetOptions{Mark: mark}
	if src.IsValid() {
		opts.SrcAddr = net.IP(src.AsSlice())
	}
	var routes []netlink.Route
	var err error
	if h != nil {
		routes, err = h.RouteGetWithOptions(net.IP(dst.AsSlice()), opts)
	} else {
		routes, err = netlink.RouteGetWithOptions(net.IP(dst.AsSlice()), opts)
	}
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
			}
			// One change comes as several messages (the route, its
			// cache, the other family's): take those that follow within
			// a moment together.
			if !d.sleepUnlessClosed(routeSettle) {
				return
			}
			select {
			case <-ch:
			default:
			}
			start := d.clock.Now()
			d.recheckSources(r)
			// Under a stream of changes (a routing daemon, a burst of
			// route adds) the checks are spaced by twice their own
			// length: at most a third of a CPU, whatever the number of
			// peers, and changes that come meanwhile are taken in one.
			if pause := 2 * d.clock.Now().Sub(start); pause > 0 && !d.sleepUnlessClosed(pause) {
				return
			}
		}
	}()
}

// routeSettle is how long a route notice waits for the rest of its burst.
const routeSettle = 10 * time.Millisecond

// sleepUnlessClosed waits for dur, or less if the device closes; it
// reports whether the device is still open.
func (d *Device) sleepUnlessClosed(dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-d.closed:
		return false
	case <-t.C:
		return true
	}
}

// recheckSources does watchRoutes' check once, for the peers that have a
// sticky source (only those can be wrong).
func (d *Device) recheckSources(r Routes) {
	d.cfgMu.Lock()
	mark := d.fwmark
	d.cfgMu.Unlock()
	type barredSource struct {
		p   *Peer
		bad conn.Endpoint
	}
	var sticky []*Peer
	var barred []barredSource
	d.peersMu.RLock()
	for p := d.peerList.head; p != nil; p = p.nextInList {
		p.mu.Lock()
		ep, bad := p.endpoint, p.badSource
		p.mu.Unlock()
		if ep.Src.IsValid() && ep.Ifindex != 0 && !ep.Dst.Addr().IsLinkLocalUnicast() {
			sticky = append(sticky, p)
		}
		if bad.Src.IsValid() {
			barred = append(barred, barredSource{p, bad})
		}
	}
	d.peersMu.RUnlock()
	if len(sticky) == 0 && len(barred) == 0 {
		return
	}
	lookup, done := r.Lookups()
	defer done()
	// A barred source whose route is back on its interface may be learned
	// again.
	for _, b := range barred {
		if oif, err := lookup(b.bad.Dst.Addr(), b.bad.Src, mark); err == nil && oif == int(b.bad.Ifindex) {
			b.p.mu.Lock()
			if b.p.badSource == b.bad { // not barred anew meanwhile
				b.p.badSource = conn.Endpoint{}
			}
			b.p.mu.Unlock()
		}
	}
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
		oif, err := lookup(ep.Dst.Addr(), ep.Src, mark)
		if err == nil && oif == int(ep.Ifindex) {
			continue
		}
		p.mu.Lock()
		cleared := p.endpoint.Src == ep.Src && p.endpoint.Ifindex == ep.Ifindex
		if cleared {
			p.endpoint.ClearSource()
			p.badSource = ep
		}
		p.mu.Unlock()
		if cleared {
			d.log.Debug("route to peer changed, sending from the kernel's choice of address", "peer", p.short(), "endpoint", ep.Dst, "was", ep.Src)
		}
	}
}
