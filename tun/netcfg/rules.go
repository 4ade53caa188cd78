package netcfg

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var families = []int{netlink.FAMILY_V4, netlink.FAMILY_V6}

// removeFullTunnelRules is the rule part of wg-quick's del_if: every rule
// that looks up the tunnel's table, and the suppress_prefixlength rules.
func (r *Runner) removeFullTunnelRules(s Settings, dev Device, link netlink.Link) error {
	var tables []int
	if t := r.knownFwMark(s, dev); t != 0 {
		tables = []int{t}
	} else {
		tables = r.orphanFwTables(link)
	}
	var errs []error
	for _, fam := range families {
		n, err := r.deleteTableRules(fam, tables)
		errs = append(errs, err)
		if n > 0 {
			errs = append(errs, r.deleteSuppressRules(fam, n))
		}
	}
	return errors.Join(errs...)
}

// isFwmarkRule reports whether a rule has wg-quick's "not fwmark T table T"
// shape.
func isFwmarkRule(rule netlink.Rule) bool {
	return rule.Invert && rule.Table > 0 && rule.Mark == uint32(rule.Table)
}

// orphanFwTables finds the tables of wg-quick-style rules with an
// automatically chosen mark (51820 and up) that belong to this interface:
// their table routes only through it, or, once the link has died with its
// daemon, holds nothing at all. Another live tunnel's table has routes
// through its own interface and is left alone.
func (r *Runner) orphanFwTables(link netlink.Link) []int {
	var out []int
	for _, fam := range families {
		rules, err := r.handle().RuleList(fam)
		if err != nil {
			continue
		}
		for _, rule := range rules {
			if isFwmarkRule(rule) && rule.Table >= firstAutoTable && !slices.Contains(out, rule.Table) && r.tableOnlyVia(rule.Table, link) {
				out = append(out, rule.Table)
			}
		}
	}
	return out
}

// tableOnlyVia reports whether every route of table t goes through link
// (vacuously true for an empty table).
func (r *Runner) tableOnlyVia(t int, link netlink.Link) bool {
	for _, fam := range families {
		routes, err := r.handle().RouteListFiltered(fam, &netlink.Route{Table: t}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return false
		}
		for _, rt := range routes {
			if link == nil || rt.LinkIndex != link.Attrs().Index {
				return false
			}
		}
	}
	return true
}

// deleteTableRules deletes every rule of fam that looks up one of tables,
// as wg-quick's "while ... lookup $table; do ip rule delete table $table".
func (r *Runner) deleteTableRules(fam int, tables []int) (int, error) {
	rules, err := r.handle().RuleList(fam)
	if err != nil {
		return 0, fmt.Errorf("list %s rules: %w", famFlag(fam), err)
	}
	n := 0
	for _, rule := range rules {
		if !slices.Contains(tables, rule.Table) {
			continue
		}
		line := fmt.Sprintf("ip %s rule delete table %d", famFlag(fam), rule.Table)
		r.printf("[#] %s", line)
		if err := ignoreGone(r.handle().RuleDel(&rule)); err != nil {
			return n, stepErr(line, err)
		}
		n++
	}
	return n, nil
}

// deleteSuppressRules removes "lookup main suppress_prefixlength 0" rules.
// wg-quick removes them all; we do too unless another wg-quick-style
// tunnel still has its fwmark rule, in which case we remove only as many as
// we removed fwmark rules, so the other tunnel keeps working.
func (r *Runner) deleteSuppressRules(fam, removed int) error {
	rules, err := r.handle().RuleList(fam)
	if err != nil {
		return fmt.Errorf("list %s rules: %w", famFlag(fam), err)
	}
	others := slices.ContainsFunc(rules, isFwmarkRule)
	for _, rule := range rules {
		if rule.Table != unix.RT_TABLE_MAIN || rule.SuppressPrefixlen != 0 {
			continue
		}
		if others && removed == 0 {
			break
		}
		line := fmt.Sprintf("ip %s rule delete table main suppress_prefixlength 0", famFlag(fam))
		r.printf("[#] %s", line)
		if err := ignoreGone(r.handle().RuleDel(&rule)); err != nil {
			return stepErr(line, err)
		}
		removed--
	}
	return nil
}
