package netcfg

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// family returns the netlink family of p. An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) is IPv6, as it is to ip(8) and to the kernel.
func family(p netip.Prefix) int {
	if p.Addr().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// famFlag is the "-4"/"-6" that wg-quick passes to ip(8).
func famFlag(f int) string {
	if f == netlink.FAMILY_V4 {
		return "-4"
	}
	return "-6"
}

// ipNet converts p, keeping its host bits (for addresses).
func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// toPrefix converts a kernel route destination; nil is the default route.
func toPrefix(n *net.IPNet, fam int) netip.Prefix {
	if n == nil {
		if fam == netlink.FAMILY_V4 {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	if fam == netlink.FAMILY_V4 {
		a = a.Unmap() // net.IP may hold an IPv4 address in 16 bytes
	}
	return netip.PrefixFrom(a, ones)
}

// covers reports whether route destination d contains all of p, which is
// what "ip route show match p" lists.
func covers(d, p netip.Prefix) bool {
	return d.Addr().Is4() == p.Addr().Is4() && d.Bits() <= p.Bits() && d.Contains(p.Addr())
}

// sortRoutes orders allowed IPs as wg-quick's `sort -nr -k 2 -t /` does:
// longest prefix first, ties broken by the whole text in reverse byte order.
// Duplicates and host bits are dropped, as "wg show allowed-ips" has none.
// IPv4-mapped prefixes are dropped too: the kernel neither routes IPv6
// packets to ::ffff:a.b.c.d nor accepts them from the wire, and the netlink
// package would send such a route as IPv4 (Up warns about them).
func sortRoutes(ps []netip.Prefix) []netip.Prefix {
	seen := make(map[netip.Prefix]bool, len(ps))
	var out []netip.Prefix
	for _, p := range ps {
		p = p.Masked()
		if !p.IsValid() || seen[p] || p.Addr().Is4In6() {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if a.Bits() != b.Bits() {
			return b.Bits() - a.Bits()
		}
		return strings.Compare(b.String(), a.String())
	})
	return out
}

// ignoreGone turns "already gone" into success, which is what makes Down
// idempotent.
func ignoreGone(err error) error {
	if err == nil || isGone(err) {
		return nil
	}
	return err
}

func isGone(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EADDRNOTAVAIL)
}
