package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Reload moves a running interface from old to new settings without taking
// it down: addresses, MTU, routes (full-tunnel rules included) and DNS are
// diffed and only the differences applied. wg-quick cannot do this (its
// syncconf path only touches peers). Hooks are not run. A failure stops the
// reload and is returned; what was already changed stays changed, so the
// caller can retry or fall back to down and up.
func (r *Runner) Reload(ctx context.Context, old, new Settings, dev Device) error {
	oldTable, err := ParseTable(old.Table, r.rtTables())
	if err != nil {
		return stepErr("parse old table", err)
	}
	newTable, err := ParseTable(new.Table, r.rtTables())
	if err != nil {
		return r.tableErr(err)
	}
	link, err := r.handle().LinkByName(new.Interface)
	if err != nil {
		return stepErr("find "+new.Interface, fmt.Errorf("%w: %v", ErrNoLink, err))
	}
	// The Undo is only a scratch record here: reload keeps its changes.
	u := &Undo{r: r}
	st := &upState{s: new, link: link, table: newTable, dev: dev, fwTable: r.knownFwMark(old, dev)}
	if err := r.reloadAddresses(u, st, old.Addresses); err != nil {
		return err
	}
	if err := r.reloadMTU(st, old.MTU); err != nil {
		return err
	}
	same := oldTable == newTable
	removed := routeDiff(old.AllowedIPs, new.AllowedIPs, same)
	added := routeDiff(new.AllowedIPs, old.AllowedIPs, same)
	if err := r.removeRoutes(ctx, old, oldTable, dev, link, removed); err != nil {
		return err
	}
	// A family whose addresses changed keeps its routes and a full
	// tunnel's policy rules in place (taking them away and back, as this
	// once did, let traffic out around the tunnel in between): the routes
	// the kernel dropped with the family's last address come back, and
	// the firewall rules, which name the addresses, are replaced in one
	// nft transaction.
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if slices.Equal(familyOf(old.Addresses, fam), familyOf(new.Addresses, fam)) {
			continue
		}
		if err := r.keepRoutes(ctx, st, old, newTable, dev, fam, added); err != nil {
			return err
		}
	}
	addSt := *st
	addSt.s.AllowedIPs = added
	if err := r.addRoutes(ctx, u, &addSt); err != nil {
		return err
	}
	return r.reloadDNS(ctx, u, old, new)
}

// keepRoutes puts back the routes of family fam that stay through a reload
// whose addresses changed (the kernel flushes a family's routes on the
// link with its last address) and rewrites a kept full tunnel's firewall
// rules for the new addresses.
func (r *Runner) keepRoutes(ctx context.Context, st *upState, old Settings, table Table, dev Device, fam int, added []netip.Prefix) error {
	h := r.handle()
	onLink := map[int][]netip.Prefix{} // listed once, as addRoutes does
	for _, p := range sortRoutes(old.AllowedIPs) {
		if family(p) != fam || !slices.Contains(st.s.AllowedIPs, p) || slices.Contains(added, p) {
			continue
		}
		id, name := r.routeTable(old, table, dev, p)
		if id < 0 {
			continue
		}
		if id == unix.RT_TABLE_MAIN && r.routeCovered(st.link, p, onLink) {
			continue // the kernel's prefix route of an address covers it, as at up
		}
		err := h.RouteAdd(linkRoute(st.link, p, id))
		switch {
		case err == nil:
			r.printf("[#] %s", routeLine("add", p, st.s.Interface, name))
		case !errors.Is(err, unix.EEXIST):
			return stepErr(routeLine("add", p, st.s.Interface, name), err)
		}
		if id == unix.RT_TABLE_MAIN {
			onLink[fam] = append(onLink[fam], p.Masked())
		}
		if p.Bits() == 0 && table.Mode == TableAuto {
			if err := r.replaceFirewall(ctx, st, fam, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaceFirewall rewrites a full tunnel's firewall rules of one family
// for the link's addresses now. With nft it is one transaction (the table
// is made sure of, deleted and built again), so no packet sees it missing;
// with iptables the old rules go and the new come.
func (r *Runner) replaceFirewall(ctx context.Context, st *upState, fam, table int) error {
	addrs := r.linkAddrs(st.link, fam)
	nft := r.tool(r.Nft, "nft")
	if nft == nil {
		if err := r.removeIptablesFamily(ctx, st.s.Interface, fam); err != nil {
			return err
		}
		fwSt := *st
		fwSt.fwTable = table
		return r.addIptables(ctx, &Undo{r: r}, &fwSt, fam)
	}
	pf, t := nftFamily(fam), nftTable(st.s.Interface)
	script := fmt.Sprintf("add table %s %s\ndelete table %s %s\n", pf, t, pf, t) + nftScript(fam, st.s.Interface, table, addrs)
	c := command{argv: withArgs(nft, "-f", "-"), stdin: script}
	r.printf("[#] %s", c)
	return stepErr(c.String(), r.run(ctx, c))
}

// familyOf lists the prefixes of ps in family fam, in order.
func familyOf(ps []netip.Prefix, fam int) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if family(p) == fam {
			out = append(out, p)
		}
	}
	return out
}

// reloadAddresses adds the new addresses, then deletes the old ones, so
// that a family keeps an address throughout when it has one before and
// after (the kernel flushes a family's routes on the link with its last
// address). Deleting a primary IPv4 address takes the secondaries of its
// subnet with it, new ones included: those are added again.
func (r *Runner) reloadAddresses(u *Undo, st *upState, old []netip.Prefix) error {
	h := r.handle()
	for _, a := range st.s.Addresses {
		if !slices.Contains(old, a) && a.Addr().Is4In6() {
			return fmt.Errorf("address %s: IPv4-mapped IPv6 addresses are not supported", a)
		}
	}
	for _, a := range st.s.Addresses {
		if !slices.Contains(old, a) {
			if err := r.addAddress(u, st, a); err != nil {
				return err
			}
		}
	}
	for _, a := range old {
		if slices.Contains(st.s.Addresses, a) {
			continue
		}
		line := fmt.Sprintf("ip %s address delete %s dev %s", famFlag(family(a)), a, st.s.Interface)
		r.printf("[#] %s", line)
		if err := ignoreGone(h.AddrDel(st.link, &netlink.Addr{IPNet: ipNet(a)})); err != nil {
			return stepErr(line, err)
		}
	}
	var have []netip.Prefix
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := r.linkPrefixes(st.link, fam)
		if err != nil {
			return stepErr("list addresses of "+st.s.Interface, err)
		}
		have = append(have, list...)
	}
	for _, a := range st.s.Addresses {
		if !slices.Contains(have, a) {
			if err := r.addAddress(u, st, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// reloadMTU sets the new MTU (given or automatic) if it differs. An
// automatic MTU before and after stays as up chose it, as wg-quick only
// applies its rule at up: looked up again now, with the tunnel's routes in
// place, the route to an endpoint may be a full tunnel's own, and every
// reload would take another 80 off (down to IPv6's minimum and below).
func (r *Runner) reloadMTU(st *upState, oldMTU int) error {
	mtu := st.s.MTU
	if mtu == 0 {
		if oldMTU == 0 {
			return nil
		}
		mtu = r.autoMTU(st.s.Endpoints, st.link.Attrs().Index)
	}
	if st.link.Attrs().MTU == mtu {
		return nil
	}
	line := fmt.Sprintf("ip link set mtu %d dev %s", mtu, st.s.Interface)
	r.printf("[#] %s", line)
	return stepErr(line, r.handle().LinkSetMTU(st.link, mtu))
}

// routeDiff lists the prefixes of a not in b; with a table change every
// route moves, so all of a is listed.
func routeDiff(a, b []netip.Prefix, sameTable bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a {
		if !sameTable || !slices.Contains(b, p) {
			out = append(out, p)
		}
	}
	return out
}

// removeRoutes deletes the routes of ps that old put on the link, and for a
// dropped default route of a full tunnel its family's policy rules and
// firewall rules too.
func (r *Runner) removeRoutes(ctx context.Context, old Settings, table Table, dev Device, link netlink.Link, ps []netip.Prefix) error {
	var errs []error
	for _, p := range sortRoutes(ps) {
		id, name := r.routeTable(old, table, dev, p)
		if id < 0 {
			continue
		}
		// As down: the line is printed for a route that was there (up
		// skips routes an address already covers, so some never were).
		line := routeLine("delete", p, old.Interface, name)
		if err := r.handle().RouteDel(linkRoute(link, p, id)); err == nil {
			r.printf("[#] %s", line)
		} else if !isGone(err) {
			errs = append(errs, stepErr(line, err))
		}
		if p.Bits() == 0 && table.Mode == TableAuto {
			prios, err := r.deleteTableRules(family(p), []int{id})
			errs = append(errs, err)
			if len(prios) > 0 {
				errs = append(errs, r.deleteSuppressRules(family(p), prios))
			}
			errs = append(errs, r.removeFirewallFamily(ctx, old.Interface, family(p)))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) reloadDNS(ctx context.Context, u *Undo, old, new Settings) error {
	if slices.Equal(old.DNS, new.DNS) && slices.Equal(old.DNSSearch, new.DNSSearch) {
		return nil
	}
	if err := r.unsetDNS(ctx, old); err != nil {
		return err
	}
	return r.setDNS(ctx, u, new)
}
