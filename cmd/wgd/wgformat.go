package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

// The ANSI sequences of wireguard-tools' terminal.h. The renderers always
// write them and strip them afterwards when color is off, as wg's
// terminal_printf does, so the plain text is exactly wg's.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// Time units of wg's pretty_time, largest first. A year is 365 days there.
var timeUnits = [...]struct {
	secs uint64
	name string
}{
	{365 * 24 * 60 * 60, "year"},
	{24 * 60 * 60, "day"},
	{60 * 60, "hour"},
	{60, "minute"},
	{1, "second"},
}

// colorMode decides, like wg, whether to keep the ANSI colors:
// WG_COLOR_MODE=always or never wins, otherwise color when stdout is a tty.
func colorMode(env string, stdoutIsTTY bool) bool {
	switch env {
	case "always":
		return true
	case "never":
		return false
	}
	return stdoutIsTTY
}

// stripANSI removes every "ESC [ ... letter" sequence, which is what wg's
// filter_ansi does to its output when color is off.
func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && !isASCIIAlpha(s[j]) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isASCIIAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// prettyTime spells a duration in seconds the way wg does:
// "1 year, 2 days, 3 hours, 4 minutes, 5 seconds", skipping zero units.
// Zero seconds gives the empty string, as in wg.
func prettyTime(secs uint64) string {
	var b strings.Builder
	for _, u := range timeUnits {
		n := secs / u.secs
		secs %= u.secs
		if n == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		plural := "s"
		if n == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, "%d %s%s%s%s", n, ansiCyan, u.name, plural, ansiReset)
	}
	return b.String()
}

// ago renders a handshake time relative to now, with wg's whole-second
// comparison: "Now", the clock-went-backward warning, or "... ago".
func ago(t, now time.Time) string {
	ts, ns := t.Unix(), now.Unix()
	switch {
	case ns == ts:
		return "Now"
	case ns < ts:
		return "(" + ansiRed + "System clock wound backward; connection problems may ensue." + ansiReset + ")"
	}
	return prettyTime(uint64(ns-ts)) + " ago"
}

// every renders a persistent keepalive interval.
func every(secs uint16) string { return "every " + prettyTime(uint64(secs)) }

// formatBytes renders a byte counter in binary units with two decimals,
// as wg's bytes() does.
func formatBytes(b uint64) string {
	const k = 1024
	unit := func(v float64, name string) string {
		return strconv.FormatFloat(v, 'f', 2, 64) + " " + ansiCyan + name + ansiReset
	}
	switch {
	case b < k:
		return strconv.FormatUint(b, 10) + " " + ansiCyan + "B" + ansiReset
	case b < k*k:
		return unit(float64(b)/k, "KiB")
	case b < k*k*k:
		return unit(float64(b)/(k*k), "MiB")
	case b < k*k*k*k:
		return unit(float64(b)/(k*k*k), "GiB")
	}
	return unit(float64(b)/(k*k*k)/k, "TiB")
}

// hideKeys reports whether secrets are masked: wg shows them only when
// WG_HIDE_KEYS is exactly "never".
func hideKeys(env string) bool { return env != "never" }

// maskedKey returns "(hidden)" or the key, for `wg show`'s pretty output.
func maskedKey(s string, hide bool) string {
	if hide {
		return "(hidden)"
	}
	return s
}

// privateKeyText is the private key as the dump shows it, "(none)" if unset.
func privateKeyText(k noise.PrivateKey) string {
	if k.IsZero() {
		return "(none)"
	}
	return k.String()
}

// publicKeyText is the interface's public key, "(none)" without a private key.
func publicKeyText(k noise.PrivateKey) string {
	if k.IsZero() {
		return "(none)"
	}
	return k.PublicKey().String()
}

// pskText is a peer's preshared key, "(none)" when it is all zeros, which is
// how a UAPI reply says "no preshared key".
func pskText(k noise.PresharedKey) string {
	if k.IsZero() {
		return "(none)"
	}
	return k.String()
}

// fwmarkText is wg's rendering of a fwmark in dumps: hex, or "off".
func fwmarkText(m uint32) string {
	if m == 0 {
		return "off"
	}
	return fmt.Sprintf("0x%x", m)
}

// keepaliveText is a keepalive interval in dumps: seconds, or "off".
func keepaliveText(s uint16) string {
	if s == 0 {
		return "off"
	}
	return strconv.FormatUint(uint64(s), 10)
}

// endpointText renders an endpoint as getnameinfo(NI_NUMERICHOST) plus the
// port, with brackets around IPv6 hosts; "(none)" when there is none.
func endpointText(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "(none)"
	}
	a := ap.Addr()
	if a.Is4() {
		return a.String() + ":" + strconv.Itoa(int(ap.Port()))
	}
	return "[" + ipText(a) + "]:" + strconv.Itoa(int(ap.Port()))
}

// ipText is inet_ntop's text for an address. It differs from netip's only
// for IPv4-compatible IPv6 addresses (::a.b.c.d), which glibc writes with a
// dotted tail.
func ipText(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return a.String()
	}
	b := a.As16()
	zero := true
	for _, x := range b[:12] {
		zero = zero && x == 0
	}
	if zero && (b[12] != 0 || b[13] != 0) {
		tail := netip.AddrFrom4([4]byte(b[12:16])).String()
		if z := a.Zone(); z != "" {
			return "::" + tail + "%" + z
		}
		return "::" + tail
	}
	return a.String()
}

// prefixText is one allowed IP as wg prints it: address, "/", length.
func prefixText(p netip.Prefix) string {
	return ipText(p.Addr()) + "/" + strconv.Itoa(p.Bits())
}

// handshakeUnix is the handshake time in whole seconds, 0 for "never".
func handshakeUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// dumpInterfaceLine is the first line of `wg show IFACE dump`, without the
// interface-name column that `wg show all dump` adds.
func dumpInterfaceLine(info device.Info) string {
	return privateKeyText(info.PrivateKey) + "\t" + publicKeyText(info.PrivateKey) + "\t" +
		strconv.FormatUint(uint64(info.ListenPort), 10) + "\t" + fwmarkText(info.FwMark) + "\n"
}

// dumpPeerLine is one peer line of `wg show IFACE dump`.
func dumpPeerLine(p *device.PeerInfo) string {
	var b strings.Builder
	b.WriteString(p.PublicKey.String())
	b.WriteByte('\t')
	b.WriteString(pskText(p.PresharedKey))
	b.WriteByte('\t')
	b.WriteString(endpointText(p.Endpoint))
	b.WriteByte('\t')
	b.WriteString(joinPrefixes(p.AllowedIPs, ","))
	b.WriteByte('\t')
	fmt.Fprintf(&b, "%d\t%d\t%d\t%s\n", handshakeUnix(p.LastHandshake), p.RxBytes, p.TxBytes, keepaliveText(p.PersistentKeepalive))
	return b.String()
}

// joinPrefixes joins allowed IPs with sep, or gives "(none)" for none.
func joinPrefixes(ps []netip.Prefix, sep string) string {
	if len(ps) == 0 {
		return "(none)"
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = prefixText(p)
	}
	return strings.Join(parts, sep)
}
