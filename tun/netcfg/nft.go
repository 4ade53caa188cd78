package netcfg

import (
	"context"
	"errors"
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
	prefixes, _ := r.linkPrefixes(link, fam)
	out := make([]netip.Addr, len(prefixes))
	for i, p := range prefixes {
		out[i] = p.Addr()
	}
	return out
}

// linkPrefixes lists the link's addresses of one family with their prefix
// lengths.
func (r *Runner) linkPrefixes(link netlink.Link, fam int) ([]netip.Prefix, error) {
	addrs, err := r.handle().AddrList(link, fam)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			if fam == netlink.FAMILY_V4 {
				ip = ip.Unmap() // net.IP may hold an IPv4 address in 16 bytes
			}
			ones, _ := a.Mask.Size()
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out, nil
}

// addFirewall installs the firewall part of add_default: with nft when it
// exists, else with iptables-restore (ip6tables-restore), as wg-quick does.
// With neither, it warns that the tunnel's addresses are not protected from
// packets arriving on other interfaces, and carries on.
func (r *Runner) addFirewall(ctx context.Context, u *Undo, st *upState, fam int) error {
	nft := r.tool(r.Nft, "nft")
	if nft == nil {
		return r.addIptables(ctx, u, st, fam)
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

// removeFirewall is wg-quick's remove_firewall: delete every nftables
// table named after the interface, whichever family, and every iptables
// rule that carries the interface's wg-quick comment.
func (r *Runner) removeFirewall(ctx context.Context, iface string) error {
	return errors.Join(r.removeNft(ctx, iface, ""), r.removeIptables(ctx, iface))
}

// removeNft deletes the interface's nftables tables: those of family
// ("ip" or "ip6"), or of every family when family is empty.
func (r *Runner) removeNft(ctx context.Context, iface, family string) error {
	nft := r.tool(r.Nft, "nft")
	if nft == nil {
		return nil
	}
	out, err := r.output(ctx, command{argv: withArgs(nft, "list", "tables")})
	if err != nil {
		return nil // As wg-quick: a failing listing means nothing to remove.
	}
	script := nftDeleteScript(out, iface, family)
	if script == "" {
		return nil
	}
	c := command{argv: withArgs(nft, "-f", "-"), stdin: script}
	r.printf("[#] %s", c)
	return stepErr(c.String(), r.run(ctx, c))
}

// nftDeleteScript turns "nft list tables" output into delete commands for
// the interface's tables of family, or of every family when it is empty.
func nftDeleteScript(listing, iface, family string) string {
	var b strings.Builder
	for line := range strings.Lines(listing) {
		line = strings.TrimSpace(line)
		if !strings.HasSuffix(line, " "+nftTable(iface)) {
			continue
		}
		if family != "" && line != "table "+family+" "+nftTable(iface) {
			continue
		}
		fmt.Fprintf(&b, "delete %s\n", line)
	}
	return b.String()
}

// iptablesMarker is the comment wg-quick puts on its iptables rules; down
// finds them by it.
func iptablesMarker(iface string) string {
	return fmt.Sprintf("-m comment --comment \"wg-quick(8) rule for %s\"", iface)
}

// iptablesScript is wg-quick's iptables-restore input for add_default.
func iptablesScript(iface string, table int, addrs []netip.Addr) string {
	marker := iptablesMarker(iface)
	var b strings.Builder
	b.WriteString("*raw\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "-I PREROUTING ! -i %s -d %s -m addrtype ! --src-type LOCAL -j DROP %s\n", iface, a, marker)
	}
	fmt.Fprintf(&b, "COMMIT\n*mangle\n-I POSTROUTING -m mark --mark %d -p udp -j CONNMARK --save-mark %s\n", table, marker)
	fmt.Fprintf(&b, "-I PREROUTING -p udp -j CONNMARK --restore-mark %s\nCOMMIT\n", marker)
	return b.String()
}

// iptablesNames are the restore and save programs of a family.
func iptablesNames(fam int) (restore, save string) {
	if fam == netlink.FAMILY_V6 {
		return "ip6tables-restore", "ip6tables-save"
	}
	return "iptables-restore", "iptables-save"
}

func (r *Runner) addIptables(ctx context.Context, u *Undo, st *upState, fam int) error {
	iface := st.s.Interface
	restoreName, _ := iptablesNames(fam)
	restore := r.iptablesTool(restoreName)
	if restore == nil {
		r.printf("Warning: neither nft nor %s found: no firewall rules for %s (packets for its addresses arriving on other interfaces are not dropped)", restoreName, iface)
		return nil
	}
	c := command{argv: withArgs(restore, "-n"), stdin: iptablesScript(iface, st.fwTable, r.linkAddrs(st.link, fam))}
	r.printf("[#] %s", c)
	if err := r.run(ctx, c); err != nil {
		return stepErr(c.String(), err)
	}
	u.push(c.String(), c.String(), func(ctx context.Context) error { return r.removeIptablesFamily(ctx, iface, fam) })
	return nil
}

// removeIptables deletes the interface's rules in both families, as
// wg-quick's remove_firewall does when iptables is installed.
func (r *Runner) removeIptables(ctx context.Context, iface string) error {
	return errors.Join(r.removeIptablesFamily(ctx, iface, netlink.FAMILY_V4), r.removeIptablesFamily(ctx, iface, netlink.FAMILY_V6))
}

func (r *Runner) removeIptablesFamily(ctx context.Context, iface string, fam int) error {
	restoreName, saveName := iptablesNames(fam)
	save, restore := r.iptablesTool(saveName), r.iptablesTool(restoreName)
	if save == nil || restore == nil {
		return nil
	}
	out, err := r.output(ctx, command{argv: save})
	if err != nil {
		return nil // as wg-quick: a failing listing means nothing to remove
	}
	script := iptablesDeleteScript(out, iface)
	if script == "" {
		return nil
	}
	c := command{argv: withArgs(restore, "-n"), stdin: script}
	r.printf("[#] %s", c)
	return stepErr(c.String(), r.run(ctx, c))
}

// iptablesDeleteScript turns iptables-save output into the restore input
// that deletes the interface's wg-quick rules: table headers and COMMIT
// lines kept, each marked "-A" rule turned into "-D", the rest dropped.
// Empty when there is no such rule.
func iptablesDeleteScript(listing, iface string) string {
	marker := iptablesMarker(iface)
	var b strings.Builder
	found := false
	for line := range strings.Lines(listing) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "*"), line == "COMMIT":
			b.WriteString(line + "\n")
		case strings.HasPrefix(line, "-A ") && strings.Contains(line, marker):
			found = true
			b.WriteString("-D" + line[2:] + "\n")
		}
	}
	if !found {
		return ""
	}
	return b.String()
}

func (r *Runner) iptablesTool(name string) []string {
	if r.Iptables != nil {
		return withArgs(r.Iptables, name)
	}
	return r.tool(nil, name)
}

// removeFirewallFamily deletes the interface's firewall rules of one family
// (its nftables table, its marked iptables rules): a reload that drops or
// redoes one family's full tunnel.
func (r *Runner) removeFirewallFamily(ctx context.Context, iface string, fam int) error {
	return errors.Join(r.removeNft(ctx, iface, nftFamily(fam)), r.removeIptablesFamily(ctx, iface, fam))
}
