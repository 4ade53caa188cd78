package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wgdvpn/wgd/noise"
)

// The value parsers return a *ParseError without File, Line or Key; the
// caller adds those.

// invalid builds the error for a value v that is not what was wanted.
// Quoting escapes control characters, so hostile input cannot forge lines
// on a terminal. A key pasted into the wrong field (an Endpoint, an
// AllowedIPs entry, ...) is hidden, as in malformed lines: it may be a
// private or preshared key.
func invalid(v, want string) *ParseError {
	v = hideKeys(v)
	return &ParseError{Value: v, Err: ErrInvalidValue, Msg: fmt.Sprintf("%q %s", v, want)}
}

// keyProblem says in words why a base64 key did not decode.
func keyProblem(err error) string {
	if errors.Is(err, noise.ErrKeyEncoding) {
		return "not valid base64"
	}
	return "a key is 44 characters of base64 ending in '='"
}

// parseSecretKey decodes a private or preshared key. The error deliberately
// leaves the value out: a typo in a secret is still mostly the secret.
func parseSecretKey[K any](parse func(string) (K, error), v string) (K, *ParseError) {
	k, err := parse(v)
	if err != nil {
		var zero K
		return zero, &ParseError{Err: ErrInvalidValue, Msg: "invalid key: " + keyProblem(err)}
	}
	return k, nil
}

// parsePublicKey decodes a public key; public keys may be shown in errors.
func parsePublicKey(v string) (noise.PublicKey, *ParseError) {
	k, err := noise.ParsePublicKey(v)
	if err != nil {
		// Shown whole: a public key is no secret.
		return noise.PublicKey{}, &ParseError{Value: v, Err: ErrInvalidValue, Msg: fmt.Sprintf("%q is not a valid key: %s", v, keyProblem(err))}
	}
	return k, nil
}

// parsePort reads a decimal UDP port. wg would also take a service name
// from /etc/services; wgd does not, so that a file means the same on
// every host.
func parsePort(v string, lowest uint64) (uint16, *ParseError) {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n < lowest {
		return 0, invalid(v, fmt.Sprintf("is not a port number (%d-65535)", lowest))
	}
	return uint16(n), nil
}

// startsWithDigit mirrors wg's check before strtoul, which would otherwise
// accept a sign or leading blanks.
func startsWithDigit(v string) bool { return v != "" && v[0] >= '0' && v[0] <= '9' }

// parseFwMark reads "off", a decimal number or a 0x-prefixed hex number, as
// wg does.
func parseFwMark(v string) (uint32, *ParseError) {
	if strings.EqualFold(v, "off") {
		return 0, nil
	}
	digits, base := v, 10
	if len(v) > 2 && v[0] == '0' && v[1] == 'x' {
		digits, base = v[2:], 16
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if !startsWithDigit(v) || err != nil || !startsWithHexDigit(digits) {
		return 0, invalid(v, "is neither off nor a number 0-0xffffffff")
	}
	return uint32(n), nil
}

func startsWithHexDigit(v string) bool {
	return v != "" && strings.IndexByte("0123456789abcdefABCDEF", v[0]) >= 0
}

// parseKeepalive reads "off" or a number of seconds.
func parseKeepalive(v string) (uint16, *ParseError) {
	if strings.EqualFold(v, "off") {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if !startsWithDigit(v) || err != nil {
		return 0, invalid(v, "is neither off nor a number 0-65535")
	}
	return uint16(n), nil
}

// appendPrefixes parses each word as a prefix, or as a bare address that
// stands for a single host, as both wg and ip(8) read it.
func appendPrefixes(dst []netip.Prefix, words []string) ([]netip.Prefix, *ParseError) {
	for _, w := range words {
		p, ok := parsePrefix(w)
		if !ok {
			return dst, invalid(w, "is not an IP prefix")
		}
		dst = append(dst, p)
	}
	return dst, nil
}

func parsePrefix(w string) (netip.Prefix, bool) {
	if strings.Contains(w, "/") {
		p, err := netip.ParsePrefix(w)
		return p, err == nil
	}
	a, err := netip.ParseAddr(w)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// parseEndpoint reads host:port or [host]:port. Like wg, an unbracketed
// value splits at its last colon, so "fd00::1:51820" is fd00::1 port 51820.
// The host is checked for shape only; names are resolved by whoever applies
// the configuration.
func parseEndpoint(v string) (Endpoint, *ParseError) {
	var host, port string
	if v[0] == '[' {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return Endpoint{}, invalid(v, "has no closing bracket")
		}
		host, port = v[1:end], v[end+1:]
		if !strings.HasPrefix(port, ":") {
			return Endpoint{}, invalid(v, "has no port (want host:port or [IPv6]:port)")
		}
		port = port[1:]
	} else {
		i := strings.LastIndexByte(v, ':')
		if i < 0 {
			return Endpoint{}, invalid(v, "has no port (want host:port or [IPv6]:port)")
		}
		host, port = v[:i], v[i+1:]
	}
	if !validHost(host) {
		return Endpoint{}, invalid(v, "is not an IP address or host name with a port")
	}
	n, err := parsePort(port, 1)
	if err != nil {
		return Endpoint{}, invalid(v, "has an invalid port (1-65535)")
	}
	return Endpoint{Host: host, Port: n}, nil
}

// validHost accepts an IP literal (IPv6 with an optional zone) or a DNS
// name made of letters, digits, '-', '_' and dots.
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return validName(a.Zone()) // no brackets in a zone: it must survive Marshal
	}
	if h == "" || len(h) > 253 || strings.Contains(h, ":") {
		return false
	}
	return validName(h)
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// appendDNS sorts each word into servers and search domains with
// wg-quick's rule: digits and dots only, or any colon, means an address.
func appendDNS(dns []netip.Addr, search []string, words []string) ([]netip.Addr, []string, *ParseError) {
	for _, w := range words {
		if a, err := netip.ParseAddr(w); err == nil {
			dns = append(dns, a)
			continue
		}
		if strings.Trim(w, "0123456789.") == "" || strings.Contains(w, ":") {
			return dns, search, invalid(w, "is not an IP address")
		}
		if len(w) > 253 || !validName(strings.TrimPrefix(w, "~")) {
			return dns, search, invalid(w, "is neither an IP address nor a search domain")
		}
		search = append(search, w)
	}
	return dns, search, nil
}

// parseMTU reads the MTU; empty means automatic. The bounds are those of a
// Linux TUN device.
func parseMTU(v string) (int, *ParseError) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n < 68 {
		return 0, invalid(v, "is not an MTU (68-65535)")
	}
	return int(n), nil
}

// parseTable reads off, auto, a table number or a table name.
func parseTable(v string) (string, *ParseError) {
	switch {
	case v == "":
		return "", nil
	case strings.EqualFold(v, "off"), strings.EqualFold(v, "auto"):
		return strings.ToLower(v), nil
	case startsWithDigit(v):
		if _, ok := ParseTableNumber(v); !ok {
			return "", invalid(v, "is not a table number (0-4294967295, decimal, 0x hex or 0 octal)")
		}
		return v, nil
	case len(v) <= 64 && validName(v) && v[0] != '-' && v[0] != '.':
		return v, nil
	}
	return "", invalid(v, "is neither off, auto, a table number nor a table name")
}

// ParseTableNumber reads a routing table number as iproute2 does (get_u32
// with base 0, which wg-quick's "ip route add ... table N" relies on):
// decimal, 0x or 0X hex, or octal after a leading 0, at most 0xffffffff,
// nothing else around it. Table 0 (unspec) is a number too: the kernel puts
// routes asked for in table 0 in main.
func ParseTableNumber(v string) (uint32, bool) {
	if !startsWithDigit(v) {
		return 0, false
	}
	digits, base := v, 10
	switch {
	case len(v) > 1 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'):
		digits, base = v[2:], 16
	case len(v) > 1 && v[0] == '0':
		digits, base = v[1:], 8
	}
	// ParseUint with an explicit base takes no sign, prefix or '_'; the
	// first-digit checks refuse what strtoul would skip or stop at.
	if !startsWithHexDigit(digits) {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// parseBool reads wg-quick's SaveConfig values.
func parseBool(v string) (bool, *ParseError) {
	switch {
	case strings.EqualFold(v, "true"):
		return true, nil
	case strings.EqualFold(v, "false"):
		return false, nil
	}
	return false, invalid(v, "is neither true nor false")
}

// appendHook keeps a hook command; an empty one would run nothing, so it
// is dropped.
func appendHook(dst []string, v string) []string {
	if v == "" {
		return dst
	}
	return append(dst, v)
}
