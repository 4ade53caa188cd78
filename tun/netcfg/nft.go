package netcfg

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
)

// nftTable is the table name wg-quick uses, kept so that either tool can
// clean up after the other.
func nftTable(iface string) string { return "wg-quick-" + iface }

func nftFamily(fam int) string {
	if fam == netlink.FAMILY_V4 {
		return "ip"
	}
	return "ip6"
}

// nftScript is wg-quick's nftables ruleset for a full tunnel: drop packets
// for the tunnel's addresses that arrive on another interface, and keep the
// fwmark of the tunnel's UDP flows in conntrack so that replies are routed
// (and reverse-path checked) like the packets that were sent.
func nftScript(fam int, iface string, table int, addrs []netip.Addr) string {
	pf, t := nftFamily(fam), nftTable(iface)
	var b strings.Builder
	fmt.Fprintf(&b, "add table %s %s\n", pf, t)
	fmt.Fprintf(&b, "add chain %s %s preraw { type filter hook prerouting priority -300; }\n", pf, t)
	fmt.Fprintf(&b, "add chain %s %s premangle { type filter hook prerouting priority -150; }\n", pf, t)
	fmt.Fprintf(&b, "add chain %s %s postmangle { type filter hook postrouting priority -150; }\n", pf, t)
	for _, a := range addrs {
		fmt.Fprintf(&b, "add rule %s %s preraw iifname != \"%s\" %s daddr %s fib saddr type != local drop\n", pf, t, iface, pf, a)
	}
	fmt.Fprintf(&b, "add rule %s %s postmangle meta l4proto udp mark %d ct mark set mark \n", pf, t, table)
	fmt.Fprintf(&b, "add rule %s %s premangle meta l4proto udp meta mark set ct mark \n", pf, t)
	return b.String()
}

// linkAddrs lists the link's addresses of one family, as wg-quick reads
// them from "ip -o addr show dev IFACE".
func (r *Runner) linkAddrs(link netlink.Link, fam int) []netip.Addr {
	addrs, err := r.handle().AddrList(link, fam)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			if fam == netlink.FAMILY_V4 {
				ip = ip.Unmap() // net.IP may hold an IPv4 address in 16 bytes
			}
			out = append(out, ip)
		}
	}
	return out
}

// addFirewall installs the nftables part of add_default when nft exists.
// wg-quick falls back to iptables-restore; we do not.
func (r *Runner) addFirewall(ctx context.Context, u *Undo, st *upState, fam int) error {
	nft := r.tool(r.Nft, "nft")
	if nft == nil {
		r.log().Info("nft not found; skipping the full-tunnel firewall rules", "interface", st.s.Interface)
		return nil
	}
	c := command{argv: withArgs(nft, "-f", "-"), stdin: nftScript(fam, st.s.Interface, st.fwTable, r.linkAddrs(st.link, fam))}
	r.printf("[#] %s", c)
	if err := r.run(ctx, c); err != nil {
		return stepErr(c.String(), err)
	}
	undo := command{argv: c.argv, stdin: fmt.Sprintf("delete table %s %s\n", nftFamily(fam), nftTable(st.s.Interface))}
	u.push(c.String(), c.String(), func(ctx context.Context) error { return r.run(ctx, undo) })
	return nil
}

// removeFirewall is wg-quick's remove_firewall for nftables: delete every
// table named after the interface, whichever family.
func (r *Runner) removeFirewall(ctx context.Context, iface string) error {
	nft := r.tool(r.Nft, "nft")
	if nft == nil {
		return nil
	}
	out, err := r.output(ctx, command{argv: withArgs(nft, "list", "tables")})
	if err != nil {
		return nil // As wg-quick: a failing listing means nothing to remove.
	}
	script := nftDeleteScript(out, iface)
	if script == "" {
		return nil
	}
	c := command{argv: withArgs(nft, "-f", "-"), stdin: script}
	r.printf("[#] %s", c)
	return stepErr(c.String(), r.run(ctx, c))
}

// nftDeleteScript turns "nft list tables" output into delete commands for
// the interface's tables.
func nftDeleteScript(listing, iface string) string {
	var b strings.Builder
	for line := range strings.Lines(listing) {
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, " "+nftTable(iface)) {
			fmt.Fprintf(&b, "delete %s\n", line)
		}
	}
	return b.String()
}
