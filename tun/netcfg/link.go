package netcfg

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// upState is what the steps of one Up share.
type upState struct {
	s     Settings
	link  netlink.Link
	owned bool // Up created the link and can delete it, taking what lives on it.
	table Table
	dev   Device
	// fwTable is the fwmark and table of the full tunnel, 0 until chosen.
	fwTable int
}

// linkUndo returns undo unless the link dies anyway, in which case undoing
// is left to the link deletion, as in wg-quick's del_if.
func linkUndo(st *upState, undo func(context.Context) error) func(context.Context) error {
	if st.owned {
		return nil
	}
	return undo
}

// addAddress is wg-quick's add_addr.
func (r *Runner) addAddress(u *Undo, st *upState, p netip.Prefix) error {
	iface := st.s.Interface
	did := fmt.Sprintf("ip %s address add %s dev %s", famFlag(family(p)), p, iface)
	r.printf("[#] %s", did)
	a := &netlink.Addr{IPNet: ipNet(p)}
	if family(p) == netlink.FAMILY_V4 {
		// ip(8) sets no broadcast address unless asked; the netlink package
		// would compute one, and IPv4zero tells it not to.
		a.Broadcast = net.IPv4zero
	}
	h := r.handle()
	if err := h.AddrAdd(st.link, a); err != nil {
		return stepErr(fmt.Sprintf("add address %s to %s", p, iface), err)
	}
	undoLine := fmt.Sprintf("ip %s address delete %s dev %s", famFlag(family(p)), p, iface)
	u.push(did, undoLine, linkUndo(st, func(context.Context) error { return ignoreGone(h.AddrDel(st.link, a)) }))
	return nil
}

// setMTUUp is wg-quick's set_mtu_up: the given MTU or the automatic one,
// and the link up.
func (r *Runner) setMTUUp(u *Undo, st *upState) error {
	mtu := st.s.MTU
	if mtu == 0 {
		mtu = r.autoMTU(st.s.Endpoints, st.link.Attrs().Index)
	}
	iface := st.s.Interface
	did := fmt.Sprintf("ip link set mtu %d up dev %s", mtu, iface)
	r.printf("[#] %s", did)
	h := r.handle()
	oldMTU, wasUp := st.link.Attrs().MTU, st.link.Attrs().Flags&net.FlagUp != 0
	if err := h.LinkSetMTU(st.link, mtu); err != nil {
		return stepErr(fmt.Sprintf("set mtu %d on %s", mtu, iface), err)
	}
	if err := h.LinkSetUp(st.link); err != nil {
		return stepErr("set "+iface+" up", err)
	}
	undoLine := fmt.Sprintf("ip link set mtu %d dev %s", oldMTU, iface)
	u.push(did, undoLine, linkUndo(st, func(context.Context) error {
		if !wasUp {
			if err := h.LinkSetDown(st.link); err != nil {
				return ignoreGone(err)
			}
		}
		return ignoreGone(h.LinkSetMTU(st.link, oldMTU))
	}))
	return nil
}

// addRoutes is wg-quick's loop over add_route, longest prefix first.
func (r *Runner) addRoutes(ctx context.Context, u *Undo, st *upState) error {
	if st.table.Mode == TableOff {
		return nil
	}
	for _, p := range st.s.AllowedIPs {
		if p.Addr().Is4In6() {
			r.printf("Warning: no route for the IPv4-mapped %s: the kernel does not route IPv6 packets to such addresses", p)
		}
	}
	onLink := map[int][]netip.Prefix{} // main-table routes on the link, by family
	for _, p := range sortRoutes(st.s.AllowedIPs) {
		var err error
		switch {
		case st.table.Mode == TableFixed:
			err = r.addRoute(u, st, p, st.table.ID, st.table.Name)
		case p.Bits() == 0:
			err = r.addDefault(ctx, u, st, p)
		case !r.routeCovered(st.link, p, onLink):
			if err = r.addRoute(u, st, p, 0, ""); err == nil {
				onLink[family(p)] = append(onLink[family(p)], p.Masked())
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// routeCovered is wg-quick's `ip route show dev IFACE match PREFIX`: a
// main-table route on the link already covers the prefix, typically the
// one the kernel added with the address. The link's routes are listed once
// per family into onLink, which addRoutes extends with each route it adds:
// listing them again for every prefix made up with 5,000 peers take 40 s.
func (r *Runner) routeCovered(link netlink.Link, p netip.Prefix, onLink map[int][]netip.Prefix) bool {
	fam := family(p)
	known, ok := onLink[fam]
	if !ok {
		filter := &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_MAIN}
		routes, err := r.handle().RouteListFiltered(fam, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			return false
		}
		known = make([]netip.Prefix, 0, len(routes))
		for _, rt := range routes {
			known = append(known, toPrefix(rt.Dst, fam))
		}
		onLink[fam] = known
	}
	for _, c := range known {
		if covers(c, p) {
			return true
		}
	}
	return false
}

// linkRoute is the route "ip route add P dev IFACE [table T]" makes.
func linkRoute(link netlink.Link, p netip.Prefix, table int) *netlink.Route {
	// Protocol "boot" is what ip(8) sets; giving it also makes a delete
	// spare the kernel's own prefix route for an address on the link.
	rt := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(p.Masked()), Table: table, Protocol: unix.RTPROT_BOOT}
	if family(p) == netlink.FAMILY_V4 {
		// ip(8) gives a gatewayless IPv4 route link scope.
		rt.Scope = netlink.SCOPE_LINK
	}
	return rt
}

func routeLine(verb string, p netip.Prefix, iface, tableName string) string {
	line := fmt.Sprintf("ip %s route %s %s dev %s", famFlag(family(p)), verb, p, iface)
	if tableName != "" {
		line += " table " + tableName
	}
	return line
}

// addRoute adds one route through the interface.
func (r *Runner) addRoute(u *Undo, st *upState, p netip.Prefix, table int, tableName string) error {
	did := routeLine("add", p, st.s.Interface, tableName)
	r.printf("[#] %s", did)
	rt := linkRoute(st.link, p, table)
	h := r.handle()
	if err := h.RouteAdd(rt); err != nil {
		return stepErr(fmt.Sprintf("add route %s via %s", p, st.s.Interface), err)
	}
	undoLine := routeLine("delete", p, st.s.Interface, tableName)
	u.push(did, undoLine, linkUndo(st, func(context.Context) error { return ignoreGone(h.RouteDel(rt)) }))
	return nil
}
