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
		prios, err := r.deleteTableRules(fam, tables)
		errs = append(errs, err)
		if len(prios) > 0 {
			errs = append(errs, r.deleteSuppressRules(fam, prios))
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
// as wg-quick's "while ... lookup $table; do ip rule delete table $table",
// and returns the priorities of those it deleted.
func (r *Runner) deleteTableRules(fam int, tables []int) ([]int, error) {
	rules, err := r.handle().RuleList(fam)
	if err != nil {
		return nil, fmt.Errorf("list %s rules: %w", famFlag(fam), err)
	}
	var prios []int
	for _, rule := range rules {
		if !slices.Contains(tables, rule.Table) {
			continue
		}
		line := fmt.Sprintf("ip %s rule delete table %d", famFlag(fam), rule.Table)
		r.printf("[#] %s", line)
		if err := ignoreGone(r.handle().RuleDel(&rule)); err != nil {
			return prios, stepErr(line, err)
		}
		prios = append(prios, rule.Priority)
	}
	return prios, nil
}

// isSuppressRule reports whether a rule is "table main
// suppress_prefixlength 0".
func isSuppressRule(rule netlink.Rule) bool {
	return rule.Table == unix.RT_TABLE_MAIN && rule.SuppressPrefixlen == 0
}

// deleteSuppressRules removes "lookup main suppress_prefixlength 0" rules
// after the fwmark rules at prios went. wg-quick removes them all; we do
// too unless another wg-quick-style tunnel still has its fwmark rule. Then
// only ours go: up added each right after its fwmark rule, so the kernel
// gave it the priority just below (one less); for any not found that way,
// as many others as are missing, so that the other tunnel keeps one. (A
// bare "ip rule delete table main suppress_prefixlength 0" deletes the
// first match, which with two full tunnels is the newer tunnel's, and
// left its fwmark rule ahead of the remaining suppress rule: the main
// table's routes, the LAN's among them, were no longer consulted.)
func (r *Runner) deleteSuppressRules(fam int, prios []int) error {
	rules, err := r.handle().RuleList(fam)
	if err != nil {
		return fmt.Errorf("list %s rules: %w", famFlag(fam), err)
	}
	others := slices.ContainsFunc(rules, isFwmarkRule)
	del := func(rule netlink.Rule) error {
		line := fmt.Sprintf("ip %s rule delete table main suppress_prefixlength 0", famFlag(fam))
		if others {
			line = fmt.Sprintf("ip %s rule delete pref %d table main suppress_prefixlength 0", famFlag(fam), rule.Priority)
		}
		r.printf("[#] %s", line)
		return stepErr(line, ignoreGone(r.handle().RuleDel(&rule)))
	}
	missing := len(prios)
	var rest []netlink.Rule
	for _, rule := range rules {
		if !isSuppressRule(rule) {
			continue
		}
		if others && slices.Contains(prios, rule.Priority+1) {
			if err := del(rule); err != nil {
				return err
			}
			missing--
			continue
		}
		rest = append(rest, rule)
	}
	for _, rule := range rest {
		if others && missing <= 0 {
			break
		}
		if err := del(rule); err != nil {
			return err
		}
		missing--
	}
	return nil
}
