package device

import (
	"net"
	"net/netip"
	"strconv"
)

// endpointScope is the interface index a configured link-local endpoint's
// zone names, which the kernel needs as the destination's scope: a number
// as it is, a name looked up in the daemon's network namespace (as
// getaddrinfo does for wg). 0 for other addresses, no zone, or a name that
// is no interface here; the address itself is kept as given, zone and all,
// as wireguard-go shows it back over UAPI.
func endpointScope(ap netip.AddrPort) int32 {
	a := ap.Addr()
	zone := a.Zone()
	if zone == "" || !a.IsLinkLocalUnicast() {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 31); err == nil {
		return int32(n)
	}
	if ifc, err := net.InterfaceByName(zone); err == nil {
		return int32(ifc.Index)
	}
	return 0
}

// endpointWithZone is the endpoint as UAPI shows it: a link-local address
// learnt from a packet (which has no zone) gets the interface it came in
// on, by name when the interface exists (as the kernel's getnameinfo shows
// it to wg, and wireguard-go's sockets report it), else by number.
func endpointWithZone(dst netip.AddrPort, ifindex int32) netip.AddrPort {
	if ifindex <= 0 || dst.Addr().Zone() != "" || !dst.Addr().IsLinkLocalUnicast() {
		return dst
	}
	zone := strconv.Itoa(int(ifindex))
	if ifc, err := net.InterfaceByIndex(int(ifindex)); err == nil {
		zone = ifc.Name
	}
	return netip.AddrPortFrom(dst.Addr().WithZone(zone), dst.Port())
}
