package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Down takes back what Up did for s, in wg-quick's order: PreDown hooks,
// SaveConfig (dev.Save), the full-tunnel rules, the link (dev.Delete;
// without it, the routes and addresses on a surviving link), DNS, the
// nftables tables, PostDown hooks. It needs nothing from the Up that
// configured the host, so it also cleans up after a daemon that was killed,
// and it is idempotent: what is already gone is skipped.
//
// A failing PreDown hook or SaveConfig stops it before anything is
// changed, as in wg-quick (unless dev.Going). After that it does not stop at the first
// failure, unlike wg-quick: it does every step and returns all failures
// joined, so that one stuck step does not leave the rest behind.
func (r *Runner) Down(ctx context.Context, s Settings, dev Device) error {
	var errs []error
	if err := r.runHooks(ctx, "PreDown", s.Interface, s.PreDown); err != nil {
		if !dev.Going {
			return err
		}
		errs = append(errs, err)
	}
	if dev.Save != nil {
		if err := dev.Save(); err != nil {
			// As wg-quick (set -e): the interface stays up, so that
			// the runtime changes SaveConfig was to keep are not lost
			// and down can be run again once the file is writable.
			// A device that goes anyway (its daemon is stopping) is
			// taken down.
			if !dev.Going {
				return stepErr("save config", err)
			}
			errs = append(errs, stepErr("save config", err))
		}
	}
	table, err := ParseTable(s.Table, r.rtTables())
	if err != nil {
		errs = append(errs, stepErr("parse table", err))
	}
	link, _ := r.handle().LinkByName(s.Interface)
	if table.Mode == TableAuto && hasDefault(s.AllowedIPs) {
		errs = append(errs, r.removeFullTunnelRules(s, dev, link))
	}
	errs = append(errs, r.removeLink(s, table, dev, link))
	errs = append(errs, r.unsetDNS(ctx, s), r.removeFirewall(ctx, s.Interface))
	if err := r.runHooks(ctx, "PostDown", s.Interface, s.PostDown); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func hasDefault(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

// removeLink deletes the interface through dev.Delete, or, when the caller
// keeps the link, removes the addresses and routes Up put on it.
func (r *Runner) removeLink(s Settings, table Table, dev Device, link netlink.Link) error {
	if dev.Delete != nil {
		if link == nil { // already gone (a killed daemon): clean up quietly
			return stepErr("delete "+s.Interface, ignoreGone(dev.Delete()))
		}
		r.printf("[#] ip link delete dev %s", s.Interface)
		return stepErr("delete "+s.Interface, ignoreGone(dev.Delete()))
	}
	if link == nil {
		return nil
	}
	var errs []error
	h := r.handle()
	for _, p := range sortRoutes(s.AllowedIPs) {
		id, name := r.routeTable(s, table, dev, p)
		if id < 0 {
			continue
		}
		if err := h.RouteDel(linkRoute(link, p, id)); err == nil {
			r.printf("[#] %s", routeLine("delete", p, s.Interface, name))
		} else if !isGone(err) {
			errs = append(errs, stepErr(routeLine("delete", p, s.Interface, name), err))
		}
	}
	for _, a := range s.Addresses {
		line := fmt.Sprintf("ip %s address delete %s dev %s", famFlag(family(a)), a, s.Interface)
		if err := h.AddrDel(link, &netlink.Addr{IPNet: ipNet(a)}); err == nil {
			r.printf("[#] %s", line)
		} else if !isGone(err) {
			errs = append(errs, stepErr(line, err))
		}
	}
	return errors.Join(errs...)
}

// routeTable says in which table Up put the route for p; -1 means none.
func (r *Runner) routeTable(s Settings, table Table, dev Device, p netip.Prefix) (int, string) {
	switch {
	case table.Mode == TableOff:
		return -1, ""
	case table.Mode == TableFixed:
		return table.ID, table.Name
	case p.Bits() == 0:
		t := r.knownFwMark(s, dev)
		if t == 0 {
			return -1, ""
		}
		return t, fmt.Sprint(t)
	}
	return unix.RT_TABLE_MAIN, ""
}

// knownFwMark is the full tunnel's table when it can be known without
// guessing: the configured fwmark, else the running device's.
func (r *Runner) knownFwMark(s Settings, dev Device) int {
	if s.FwMark != 0 {
		return int(s.FwMark)
	}
	if dev.FwMark != nil {
		if m, err := dev.FwMark(); err == nil {
			return int(m)
		}
	}
	return 0
}
