package netcfg

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// firstAutoTable is where wg-quick starts looking for a free table (and
// fwmark) for a full tunnel: WireGuard's port number.
const firstAutoTable = 51820

// srcValidMark lets the reverse-path filter see the fwmark of the tunnel's
// own UDP packets, which wg-quick turns on for IPv4.
const srcValidMark = "net.ipv4.conf.all.src_valid_mark"

// fwmarkRule is "not fwmark T table T": everything except the tunnel's own
// encrypted packets goes to the tunnel's table.
func fwmarkRule(fam, table int) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Family = fam
	rule.Table = table
	rule.Mark = uint32(table)
	rule.Invert = true
	return rule
}

// suppressRule is "table main suppress_prefixlength 0": the main table is
// still consulted first for everything more specific than a default route.
func suppressRule(fam int) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Family = fam
	rule.Table = unix.RT_TABLE_MAIN
	rule.SuppressPrefixlen = 0
	return rule
}

// addDefault is wg-quick's add_default for one family.
func (r *Runner) addDefault(ctx context.Context, u *Undo, st *upState, p netip.Prefix) error {
	if err := r.chooseFwTable(u, st); err != nil {
		return err
	}
	t := st.fwTable
	if err := r.addRoute(u, st, p, t, strconv.Itoa(t)); err != nil {
		return err
	}
	fam := family(p)
	if err := r.addRule(u, fwmarkRule(fam, t), fmt.Sprintf("ip %s rule add not fwmark %d table %d", famFlag(fam), t, t),
		fmt.Sprintf("ip %s rule delete table %d", famFlag(fam), t)); err != nil {
		return err
	}
	if err := r.addRule(u, suppressRule(fam), fmt.Sprintf("ip %s rule add table main suppress_prefixlength 0", famFlag(fam)),
		fmt.Sprintf("ip %s rule delete table main suppress_prefixlength 0", famFlag(fam))); err != nil {
		return err
	}
	if fam == netlink.FAMILY_V4 {
		r.printf("[#] sysctl -q %s=1", srcValidMark)
		if err := r.writeSysctl(srcValidMark, "1"); err != nil {
			return stepErr("sysctl -q "+srcValidMark+"=1", err)
		}
	}
	return r.addFirewall(ctx, u, st, fam)
}

// chooseFwTable picks the table and fwmark once per Up: the configured
// fwmark, else the first table from 51820 up with no routes, which is then
// set as the device's fwmark.
func (r *Runner) chooseFwTable(u *Undo, st *upState) error {
	if st.fwTable != 0 {
		return nil
	}
	if st.s.FwMark != 0 {
		st.fwTable = int(st.s.FwMark)
		return nil
	}
	t := firstAutoTable
	for r.tableInUse(t) {
		t++
	}
	did := fmt.Sprintf("wg set %s fwmark %d", st.s.Interface, t)
	r.printf("[#] %s", did)
	if st.dev.SetFwMark == nil {
		return stepErr(did, ErrNoFwMarkSetter)
	}
	if err := st.dev.SetFwMark(uint32(t)); err != nil {
		return stepErr(did, err)
	}
	st.fwTable = t
	set := st.dev.SetFwMark
	u.push(did, fmt.Sprintf("wg set %s fwmark 0", st.s.Interface),
		linkUndo(st, func(context.Context) error { return set(0) }))
	return nil
}

// tableInUse reports whether a table holds any IPv4 or IPv6 route.
func (r *Runner) tableInUse(t int) bool {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := r.handle().RouteListFiltered(fam, &netlink.Route{Table: t}, netlink.RT_FILTER_TABLE)
		if err == nil && len(routes) > 0 {
			return true
		}
	}
	return false
}

// addRule adds a policy rule; rules outlive the link, so they are always
// undone.
func (r *Runner) addRule(u *Undo, rule *netlink.Rule, did, undoLine string) error {
	r.printf("[#] %s", did)
	h := r.handle()
	if err := h.RuleAdd(rule); err != nil {
		return stepErr(did, err)
	}
	u.push(did, undoLine, func(context.Context) error { return ignoreGone(h.RuleDel(rule)) })
	return nil
}
