// Package conf reads and writes the configuration files of wg-quick(8): an
// [Interface] section and any number of [Peer] sections. It turns text into
// typed values and back, with errors that name the file, line and key, and
// it has no side effects: no name resolution, no system calls.
//
// The accepted syntax is the union of what `wg setconf` (wireguard-tools
// config.c) and the wg-quick script accept, so that a file that works with
// the real tools works with wgd. Where the two tools disagree this package
// follows the tool that owns the key: wg for the keys it parses, wg-quick
// for Address, DNS, MTU, Table, the hooks and SaveConfig.
package conf

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/wgdvpn/wgd/noise"
)

// Config is one parsed configuration file. Its zero value is an empty but
// valid configuration.
type Config struct {
	Interface Interface
	Peers     []Peer
}

// Interface holds the [Interface] section. Zero values mean "not set"; for
// the keys that wg itself reads, not set and zero are the same thing to
// `wg setconf`, which replaces the whole device state.
type Interface struct {
	// PrivateKey is the device's static key. Zero means none: the device
	// has no identity and sends no handshakes.
	PrivateKey noise.PrivateKey
	// ListenPort is the UDP port; 0 lets the kernel pick one.
	ListenPort uint16
	// FwMark marks outgoing packets; 0 (written "off" or 0) means no mark.
	FwMark uint32
	// ZeroPrivateKey, ZeroListenPort and ZeroFwMark say the file gave the
	// key with a zero value (the all-zero key, 0, off), which an absent key
	// and a zero field cannot tell: `wg addconf` sends such a value
	// (removing the device's key or mark, or moving it to a random port),
	// where an absent key leaves the device's value alone.
	ZeroPrivateKey, ZeroListenPort, ZeroFwMark bool

	// Addresses are assigned to the interface. Host bits are kept: they are
	// the interface's own address within the prefix.
	Addresses []netip.Prefix
	// DNS are name servers and DNSSearch search domains, as wg-quick splits
	// its DNS key: a word that looks like an IP address is a server.
	DNS       []netip.Addr
	DNSSearch []string
	// MTU of the interface; 0 means wg-quick's automatic choice.
	MTU int
	// Table selects where routes for AllowedIPs go: "" and "auto" mean the
	// main table (or wg-quick's fwmark table for a default route), "off"
	// means no routes, otherwise a table number or a name from
	// /etc/iproute2/rt_tables. "off" and "auto" are stored in lower case.
	Table string
	// The hooks are shell commands run by wg-quick around up and down, in
	// the order written; %i stands for the interface name.
	PreUp, PostUp, PreDown, PostDown []string
	// SaveConfig asks `down` to write the running configuration back.
	SaveConfig bool
}

// Peer holds one [Peer] section.
type Peer struct {
	// PublicKey identifies the peer; every peer has one, and no two peers
	// of a file share one.
	PublicKey noise.PublicKey
	// PresharedKey is mixed into the handshake; zero means none.
	PresharedKey noise.PresharedKey
	// ZeroPresharedKey says the file gave PresharedKey as the all-zero
	// key: wg then sends it, which removes an existing peer's preshared
	// key under addconf.
	ZeroPresharedKey bool
	// AllowedIPs are kept as written. wg masks host bits when it applies
	// them; MaskedAllowedIPs gives that form.
	AllowedIPs []netip.Prefix
	// Endpoint is where to send the first handshake; the zero value means
	// none. A host name is kept unresolved.
	Endpoint Endpoint
	// PersistentKeepalive is the keepalive interval in seconds; 0 is off.
	PersistentKeepalive uint16
	// ZeroKeepalive says the file gave PersistentKeepalive as 0 or off: wg
	// then sends it, which turns an existing peer's keepalive off under
	// addconf.
	ZeroKeepalive bool
}

// Endpoint is a peer address as written in a configuration file: an IP
// literal or a host name to be resolved when the configuration is applied,
// and a port. The zero value means no endpoint.
type Endpoint struct {
	Host string // IP literal (IPv6 without brackets, zone allowed) or name
	Port uint16
}

// IsZero reports whether e is the "no endpoint" value.
func (e Endpoint) IsZero() bool { return e.Host == "" && e.Port == 0 }

// AddrPort returns the endpoint as an address and port when Host is an IP
// literal. It reports false for host names, which need resolving first.
func (e Endpoint) AddrPort() (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(e.Host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, e.Port), true
}

// String returns the endpoint in the form wg reads: host:port, with IPv6
// literals in brackets.
func (e Endpoint) String() string {
	port := strconv.Itoa(int(e.Port))
	if strings.Contains(e.Host, ":") {
		return "[" + e.Host + "]:" + port
	}
	return e.Host + ":" + port
}

// MaskedAllowedIPs returns the peer's allowed IPs with host bits cleared,
// which is what wg and the kernel install ("10.0.0.1/24" becomes
// "10.0.0.0/24").
func (p *Peer) MaskedAllowedIPs() []netip.Prefix {
	if p.AllowedIPs == nil {
		return nil
	}
	out := make([]netip.Prefix, len(p.AllowedIPs))
	for i, pfx := range p.AllowedIPs {
		out[i] = pfx.Masked()
	}
	return out
}

// Strip returns a copy of c without the keys that only wg-quick reads
// (Address, DNS, MTU, Table, the hooks, SaveConfig): what remains is what
// `wg setconf` accepts, as `wg-quick strip` produces it.
func Strip(c *Config) *Config {
	ci := &c.Interface
	out := &Config{Interface: Interface{
		PrivateKey: ci.PrivateKey, ListenPort: ci.ListenPort, FwMark: ci.FwMark,
		ZeroPrivateKey: ci.ZeroPrivateKey, ZeroListenPort: ci.ZeroListenPort, ZeroFwMark: ci.ZeroFwMark,
	}}
	if c.Peers != nil {
		out.Peers = make([]Peer, len(c.Peers))
		for i, p := range c.Peers {
			p.AllowedIPs = append([]netip.Prefix(nil), p.AllowedIPs...)
			out.Peers[i] = p
		}
	}
	return out
}
