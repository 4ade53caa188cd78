package netcfg

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strings"
)

// dnsManager is the tool that installs DNS servers.
type dnsManager int

const (
	dnsNone dnsManager = iota
	dnsResolvconf
	dnsResolvectl
)

// dnsTool picks resolvconf when present (what wg-quick uses) and
// systemd-resolved's resolvectl otherwise.
func (r *Runner) dnsTool() (dnsManager, []string) {
	if argv := r.tool(r.Resolvconf, "resolvconf"); argv != nil {
		return dnsResolvconf, argv
	}
	if argv := r.tool(r.Resolvectl, "resolvectl"); argv != nil {
		return dnsResolvectl, argv
	}
	return dnsNone, nil
}

// setDNSCommands builds the commands that install s's DNS settings.
func setDNSCommands(m dnsManager, tool []string, s Settings, prefix string) []command {
	switch m {
	case dnsResolvconf:
		var b strings.Builder
		for _, a := range s.DNS {
			b.WriteString("nameserver " + a.String() + "\n")
		}
		if len(s.DNSSearch) > 0 {
			b.WriteString("search " + strings.Join(s.DNSSearch, " ") + "\n")
		}
		return []command{{argv: withArgs(tool, "-a", prefix+s.Interface, "-m", "0", "-x"), stdin: b.String()}}
	case dnsResolvectl:
		dns := withArgs(tool, "dns", s.Interface)
		for _, a := range s.DNS {
			dns = append(dns, a.String())
		}
		// "~." makes the link the route for every name, the counterpart of
		// resolvconf's -x (exclusive) that wg-quick asks for; search
		// domains come first so they are also used for single-label names.
		domain := withArgs(tool, "domain", s.Interface)
		domain = append(append(domain, s.DNSSearch...), "~.")
		return []command{{argv: dns}, {argv: domain}}
	}
	return nil
}

// unsetDNSCommands builds the commands that take DNS settings back.
func unsetDNSCommands(m dnsManager, tool []string, iface, prefix string) []command {
	switch m {
	case dnsResolvconf:
		return []command{{argv: withArgs(tool, "-d", prefix+iface, "-f")}}
	case dnsResolvectl:
		return []command{{argv: withArgs(tool, "revert", iface)}}
	}
	return nil
}

func withArgs(tool []string, args ...string) []string {
	return append(append([]string(nil), tool...), args...)
}

// interfaceOrderLine matches a "name*" pattern in resolvconf's
// interface-order, which wg-quick turns into the record prefix ("tun.").
var interfaceOrderLine = regexp.MustCompile(`^([A-Za-z0-9-]+)\*$`)

// resolvconfPrefix is wg-quick's resolvconf_iface_prefix.
func (r *Runner) resolvconfPrefix() string {
	path := r.InterfaceOrder
	if path == "" {
		path = "/etc/resolvconf/interface-order"
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// wg-quick's "read -r" strips surrounding blanks.
		if m := interfaceOrderLine.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			return m[1] + "."
		}
	}
	return ""
}

// setDNS installs DNS servers; nothing happens without any, as in wg-quick
// (search domains alone are ignored).
func (r *Runner) setDNS(ctx context.Context, u *Undo, s Settings) error {
	if len(s.DNS) == 0 {
		return nil
	}
	m, tool := r.dnsTool()
	if m == dnsNone {
		return stepErr("set DNS for "+s.Interface, ErrNoDNSManager)
	}
	prefix := r.resolvconfPrefix()
	for _, c := range setDNSCommands(m, tool, s, prefix) {
		r.printf("[#] %s", c)
		if err := r.run(ctx, c); err != nil {
			return stepErr(c.String(), err)
		}
	}
	undo := unsetDNSCommands(m, tool, s.Interface, prefix)
	u.push("set DNS", undo[0].String(), func(ctx context.Context) error { return r.run(ctx, undo[0]) })
	return nil
}

// unsetDNS removes DNS settings, for Down. A resolvectl revert on a link
// that is already gone fails harmlessly (resolved forgot it with the link),
// so its error is only logged.
func (r *Runner) unsetDNS(ctx context.Context, s Settings) error {
	if len(s.DNS) == 0 {
		return nil
	}
	m, tool := r.dnsTool()
	for _, c := range unsetDNSCommands(m, tool, s.Interface, r.resolvconfPrefix()) {
		r.printf("[#] %s", c)
		if err := r.run(ctx, c); err != nil {
			if m == dnsResolvectl {
				r.log().Debug("resolvectl revert failed", "err", err)
				continue
			}
			return stepErr(c.String(), err)
		}
	}
	return nil
}
