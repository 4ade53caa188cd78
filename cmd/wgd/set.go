package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

const setUsage = "Usage: %s set <interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] [peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] [persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...\n"

// errSetArgs means the `set` arguments were rejected; the message that says
// why, in wg's words, is already on stderr.
var errSetArgs = errors.New("invalid set arguments")

// b64KeyLen is the length of a base64 key; wg's key files hold exactly this
// much plus optional whitespace.
const b64KeyLen = 44

// runSet is `wg set IFACE ...`.
func runSet(e *wgEnv, args []string) int {
	if len(args) < 2 {
		fmt.Fprintf(e.Stderr, setUsage, e.Prog)
		return 1
	}
	cfg, err := parseSetArgs(e, args[1:])
	if err != nil {
		return 1
	}
	if err := e.Backend.Set(args[0], cfg); err != nil {
		fmt.Fprintf(e.Stderr, "Unable to modify interface: %s\n", errnoText(err))
		return 1
	}
	return 0
}

// parseSetArgs turns wg's set grammar into one configuration transaction,
// printing wg's message to e.Stderr and returning errSetArgs on the first
// bad word, as wg's config_read_cmd does.
func parseSetArgs(e *wgEnv, args []string) (*device.Config, error) {
	cfg := &device.Config{}
	var peer *device.PeerConfig
	for len(args) > 0 {
		n, err := setWord(e, cfg, &peer, args)
		if err != nil {
			return nil, err
		}
		args = args[n:]
	}
	return cfg, nil
}

// setWord consumes one keyword (and its value) and reports how many words
// it used. peer points at the peer the following words apply to.
func setWord(e *wgEnv, cfg *device.Config, peer **device.PeerConfig, args []string) (int, error) {
	w, p, has := args[0], *peer, len(args) >= 2
	fail := func(format string, a ...any) (int, error) {
		fmt.Fprintf(e.Stderr, format, a...)
		return 0, errSetArgs
	}
	val := ""
	if has {
		val = args[1]
	}
	switch {
	case w == "listen-port" && has && p == nil:
		port, msg := parsePortArg(val)
		if msg != "" {
			return fail("%s", msg)
		}
		cfg.ListenPort = &port
	case w == "fwmark" && has && p == nil:
		m, ok := parseFwmarkArg(val)
		if !ok {
			return fail("Fwmark is neither 0/off nor 0-0xffffffff: `%s'\n", val)
		}
		cfg.FwMark = &m
	case w == "private-key" && has && p == nil:
		k, err := readKeyFile(e.Stderr, val)
		if err != nil {
			return 0, err
		}
		pk := noise.PrivateKey(k)
		cfg.PrivateKey = &pk
	case w == "peer" && has:
		k, err := noise.ParsePublicKey(val)
		if err != nil {
			return fail("Key is not the correct length or format: `%s'\n", val)
		}
		cfg.Peers = append(cfg.Peers, device.PeerConfig{PublicKey: k})
		*peer = &cfg.Peers[len(cfg.Peers)-1]
		return 2, nil
	case w == "remove" && p != nil:
		p.Remove = true
		return 1, nil
	default:
		if p == nil || !has {
			return fail("Invalid argument: %s\n", w)
		}
		return 2, setPeerWord(e, p, w, val)
	}
	return 2, nil
}

// setPeerWord handles the keywords that take a value and apply to a peer.
// Taking the address of the last element of cfg.Peers is safe because the
// pointer is replaced whenever append may have moved the slice.
func setPeerWord(e *wgEnv, p *device.PeerConfig, w, val string) error {
	fail := func(format string, a ...any) error {
		fmt.Fprintf(e.Stderr, format, a...)
		return errSetArgs
	}
	switch w {
	case "endpoint":
		ap, err := resolveEndpoint(e, val)
		if err != nil {
			return err
		}
		p.Endpoint = &ap
	case "allowed-ips":
		return parseAllowedIPs(e.Stderr, p, stripSpace(val))
	case "persistent-keepalive":
		ka, ok := parseKeepaliveArg(val)
		if !ok {
			return fail("Persistent keepalive interval is neither 0/off nor 1-65535: `%s'\n", val)
		}
		p.PersistentKeepalive = &ka
	case "preshared-key":
		k, err := readKeyFile(e.Stderr, val)
		if err != nil {
			return err
		}
		psk := noise.PresharedKey(k)
		p.PresharedKey = &psk
	default:
		return fail("Invalid argument: %s\n", w)
	}
	return nil
}

// parsePortArg accepts what getaddrinfo accepts as a UDP service: a number
// up to 65535 or a service name from /etc/services. It returns wg's message
// on failure.
func parsePortArg(v string) (uint16, string) {
	if v == "" {
		return 0, "Unable to parse empty port\n"
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return 0, fmt.Sprintf("Servname not supported for ai_socktype: `%s'\n", v)
		}
		return uint16(n), ""
	}
	n, err := net.LookupPort("udp", v)
	if err != nil {
		return 0, fmt.Sprintf("Servname not supported for ai_socktype: `%s'\n", v)
	}
	return uint16(n), ""
}

// parseFwmarkArg is wg's parse_fwmark: "off", decimal, or 0x-prefixed hex.
func parseFwmarkArg(v string) (uint32, bool) {
	if strings.EqualFold(v, "off") {
		return 0, true
	}
	if v == "" || !isDigit(v[0]) {
		return 0, false
	}
	base, digits := 10, v
	if len(v) > 2 && v[0] == '0' && v[1] == 'x' {
		base, digits = 16, v[2:]
	}
	n, err := strconv.ParseUint(digits, base, 32)
	return uint32(n), err == nil && !strings.ContainsAny(digits, "+-_")
}

// parseKeepaliveArg is wg's parse_persistent_keepalive: "off" or 0-65535.
func parseKeepaliveArg(v string) (uint16, bool) {
	if strings.EqualFold(v, "off") {
		return 0, true
	}
	if !isDigits(v) {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 16)
	return uint16(n), err == nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// stripSpace drops every white-space character, as wg does to the
// allowed-ips argument.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// readKeyFile reads a key the way wg's parse_keyfile does: exactly one
// base64 key and optional trailing white space; an empty file (such as
// /dev/null) is the all-zero key, which removes the key.
func readKeyFile(stderr io.Writer, path string) ([noise.KeySize]byte, error) {
	var zero [noise.KeySize]byte
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "fopen: %s\n", strerror(unwrapPathErr(err)))
		return zero, errSetArgs
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		fmt.Fprintf(stderr, "fread: %s\n", strerror(unwrapPathErr(err)))
		return zero, errSetArgs
	}
	if len(data) == 0 {
		return zero, nil
	}
	if len(data) < b64KeyLen {
		fmt.Fprintf(stderr, "Invalid length key in key file\n")
		return zero, errSetArgs
	}
	for _, c := range data[b64KeyLen:] {
		if !isCSpace(c) {
			fmt.Fprintf(stderr, "Found trailing character in key file: `%c'\n", c)
			return zero, errSetArgs
		}
	}
	k, err := noise.ParsePresharedKey(string(data[:b64KeyLen]))
	if err != nil {
		fmt.Fprintf(stderr, "Key is not the correct length or format: `%s'\n", data[:b64KeyLen])
		return zero, errSetArgs
	}
	return k, nil
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// unwrapPathErr returns the errno inside an *os.PathError, so that the
// message is strerror's text alone, as perror prints it.
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseAllowedIPs is wg's parse_allowedips for one comma-separated list:
// a plain list replaces the peer's allowed IPs; entries prefixed with '+'
// or '-' add or remove one prefix and turn replacement off, as newer
// wireguard-tools do. An empty list replaces them with nothing.
func parseAllowedIPs(stderr io.Writer, p *device.PeerConfig, v string) error {
	p.ReplaceAllowedIPs = true
	if v == "" {
		return nil
	}
	for _, entry := range strings.Split(v, ",") {
		ch := device.AllowedIPChange{}
		switch {
		case strings.HasPrefix(entry, "-"):
			ch.Remove = true
			fallthrough
		case strings.HasPrefix(entry, "+"):
			p.ReplaceAllowedIPs = false
			entry = entry[1:]
		}
		pfx, msg := parseAllowedIP(entry)
		if msg != "" {
			fmt.Fprint(stderr, msg)
			return errSetArgs
		}
		if pfx != pfx.Masked() {
			fmt.Fprintf(stderr, "Warning: AllowedIP has nonzero host part: %s\n", entry)
		}
		ch.Prefix = pfx
		p.AllowedIPs = append(p.AllowedIPs, ch)
	}
	return nil
}

// parseAllowedIP parses "ip[/cidr]" like wg: the address as inet_pton reads
// it (no zones), the length in decimal and within the family's size, host
// bits kept (the device masks them).
func parseAllowedIP(entry string) (netip.Prefix, string) {
	ipText, mask, hasMask := strings.Cut(entry, "/")
	a, err := netip.ParseAddr(ipText)
	if err != nil || a.Zone() != "" || (strings.Contains(ipText, ":") != a.Is6()) {
		return netip.Prefix{}, fmt.Sprintf("Unable to parse IP address: `%s'\n", ipText)
	}
	bits := a.BitLen()
	if hasMask {
		n, err := strconv.ParseUint(mask, 10, 64)
		if !isDigits(mask) || err != nil || n > uint64(a.BitLen()) {
			return netip.Prefix{}, fmt.Sprintf("AllowedIP is not in the correct format: `%s'\n", entry)
		}
		bits = int(n)
	}
	return netip.PrefixFrom(a, bits), ""
}

// resolveEndpoint is wg's parse_endpoint: split host and port ([v6]:port or
// the last colon), then resolve the host, retrying transient failures
// WG_ENDPOINT_RESOLUTION_RETRIES times (default 15, "infinity" allowed)
// with a growing pause, and take the first address.
func resolveEndpoint(e *wgEnv, v string) (netip.AddrPort, error) {
	fail := func(format string, a ...any) (netip.AddrPort, error) {
		fmt.Fprintf(e.Stderr, format, a...)
		return netip.AddrPort{}, errSetArgs
	}
	host, port, msg := splitEndpoint(v)
	if msg != "" {
		return fail("%s", msg)
	}
	portNum, msg := parsePortArg(port)
	if msg != "" {
		return fail("Servname not supported for ai_socktype: `%s'\n", v)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !scopeResolves(a) {
			return fail("Name or service not known: `%s'\n", v)
		}
		return netip.AddrPortFrom(a, portNum), nil
	}
	retries, ok := resolutionRetries(e.Getenv("WG_ENDPOINT_RESOLUTION_RETRIES"))
	if !ok {
		return fail("Unable to parse WG_ENDPOINT_RESOLUTION_RETRIES: `%s'\n", e.Getenv("WG_ENDPOINT_RESOLUTION_RETRIES"))
	}
	pause := time.Second
	for {
		addrs, err := e.Resolver.LookupNetIP(context.Background(), "ip", host)
		if err == nil && len(addrs) > 0 {
			return netip.AddrPortFrom(addrs[0].Unmap(), portNum), nil
		}
		var dnsErr *net.DNSError
		if err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			return fail("Name or service not known: `%s'\n", v)
		}
		if retries == 0 {
			return fail("Temporary failure in name resolution: `%s'\n", v)
		}
		retries--
		progress := e.Progress
		if progress == nil {
			progress = e.Stderr
		}
		fmt.Fprintf(progress, "Temporary failure in name resolution: `%s'. Trying again in %.2f seconds...\n", v, pause.Seconds())
		e.Sleep(pause)
		pause = min(20*time.Second, pause*6/5)
	}
}

// scopeResolves is glibc's rule for an IPv6 zone, which wg's getaddrinfo
// applies: a number is taken as it is; an interface name only on a
// link-local (or interface- or link-local multicast) address and only if
// the interface exists here. Anything else does not resolve, and passing it
// on would give the daemon an endpoint wg itself cannot read back.
func scopeResolves(a netip.Addr) bool {
	zone := a.Zone()
	if zone == "" {
		return true
	}
	if isDigits(zone) {
		return true
	}
	if !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() {
		return false
	}
	_, err := net.InterfaceByName(zone)
	return err == nil
}

// splitEndpoint separates host and port as wg does, with its messages.
func splitEndpoint(v string) (host, port, msg string) {
	if v == "" {
		return "", "", "Unable to parse empty endpoint\n"
	}
	if v[0] == '[' {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return "", "", fmt.Sprintf("Unable to find matching brace of endpoint: `%s'\n", v)
		}
		rest := v[end+1:]
		if len(rest) < 2 || rest[0] != ':' {
			return "", "", fmt.Sprintf("Unable to find port of endpoint: `%s'\n", v)
		}
		return v[1:end], rest[1:], ""
	}
	i := strings.LastIndexByte(v, ':')
	if i < 0 || i == len(v)-1 {
		return "", "", fmt.Sprintf("Unable to find port of endpoint: `%s'\n", v)
	}
	return v[:i], v[i+1:], ""
}

// resolutionRetries reads WG_ENDPOINT_RESOLUTION_RETRIES: unset is 15,
// "infinity" is -1 (never give up).
func resolutionRetries(v string) (int, bool) {
	switch v {
	case "":
		return 15, true
	case "infinity":
		return -1, true
	}
	n, err := strconv.ParseUint(v, 10, 31)
	return int(n), err == nil
}
