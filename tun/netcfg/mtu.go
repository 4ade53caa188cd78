package netcfg

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// wireguardOverhead is what wg-quick subtracts from the underlay MTU: 80
// bytes covers an IPv6 header (40), UDP (8) and WireGuard's data header and
// tag (32). IPv4 endpoints get the same 80, as in wg-quick.
const wireguardOverhead = 80

// fallbackUnderlayMTU is wg-quick's guess when no route says anything.
const fallbackUnderlayMTU = 1500

// pickMTU is wg-quick's set_mtu_up rule as a pure function: the largest MTU
// among the routes to the endpoints; if there is none, the MTU of the IPv4
// default route; else 1500. Then minus 80.
func pickMTU(endpointMTUs []int, defaultRouteMTU int) int {
	mtu := 0
	for _, m := range endpointMTUs {
		mtu = max(mtu, m)
	}
	if mtu == 0 {
		mtu = max(defaultRouteMTU, 0)
	}
	if mtu == 0 {
		mtu = fallbackUnderlayMTU
	}
	return mtu - wireguardOverhead
}

// autoMTU gathers the inputs of pickMTU from the kernel the way wg-quick
// does with "ip route get" and "ip route show default".
func (r *Runner) autoMTU(endpoints []netip.Addr, self int) int {
	var mtus []int
	for _, ep := range endpoints {
		routes, err := r.handle().RouteGet(net.IP(ep.Unmap().AsSlice()))
		if err != nil || len(routes) == 0 {
			r.log().Debug("no route to endpoint", "endpoint", ep, "err", err)
			continue
		}
		if self != 0 && routes[0].LinkIndex == self {
			// The tunnel's own route (a full tunnel, looked up without
			// its mark) says nothing about the path its datagrams take.
			continue
		}
		mtus = append(mtus, r.routeMTU(routes[0]))
	}
	return pickMTU(mtus, r.defaultRouteMTU())
}

// routeMTU is the route's own mtu metric if set, else its device's MTU, the
// two alternatives of wg-quick's regular expression.
func (r *Runner) routeMTU(rt netlink.Route) int {
	if rt.MTU > 0 {
		return rt.MTU
	}
	if rt.LinkIndex == 0 {
		return 0
	}
	link, err := r.handle().LinkByIndex(rt.LinkIndex)
	if err != nil {
		return 0
	}
	return link.Attrs().MTU
}

// defaultRouteMTU looks at the first IPv4 default route of the main table,
// which is the first line of "ip route show default".
func (r *Runner) defaultRouteMTU() int {
	routes, err := r.handle().RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0
	}
	for _, rt := range routes {
		if rt.Dst == nil || isDefault(rt.Dst) {
			return r.routeMTU(rt)
		}
	}
	return 0
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}
