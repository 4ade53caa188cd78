package ipc

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/conf"
	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

// ParseSet reads the body of a `set=1` operation, the key=value lines up to
// and including the blank line that ends it, and returns it as one typed
// transaction. It accepts and rejects exactly what wireguard-go's IpcSet
// does, with the same errno, but it reads the whole request before it
// answers: on a bad line it keeps reading (within limits) to the blank line,
// so the caller can apply nothing and the connection stays usable.
//
// The result is normalized so that WriteSet and ParseSet round-trip: a
// removed peer carries only its key, non-zero private keys are clamped and
// allowed IPs are masked, as wireguard-go stores them.
func ParseSet(r *bufio.Reader, limits Limits) (*device.Config, error) {
	limits = limits.withDefaults()
	p := &setParser{
		lr:     newLineReader(r, limits.MaxLineBytes, limits.MaxRequestBytes),
		limits: limits,
		cfg:    &device.Config{},
	}
	return p.run()
}

// setParser holds the state of one set request. Allowed IPs of all peers
// share one backing array (ips), each peer getting its own full slice
// expression of it when its section ends, which saves an allocation per peer.
type setParser struct {
	lr     *lineReader
	limits Limits
	cfg    *device.Config

	inPeer  bool // a public_key line has been seen
	removed bool // the current peer has remove=true: lines are checked, not kept
	ipStart int  // index in ips where the current peer's allowed IPs begin
	ips     []device.AllowedIPChange
}

func (p *setParser) run() (*device.Config, error) {
	var first *Error
	for {
		line, err := p.lr.next()
		if err != nil {
			e := readErr(err, p.lr.n)
			if e.fatal {
				return nil, e
			}
			if first == nil {
				first = e
			}
			continue
		}
		if len(line) == 0 {
			break
		}
		if first != nil {
			continue // drain to the blank line; the request is already rejected
		}
		first = p.line(line)
	}
	if first != nil {
		return nil, first
	}
	p.endPeer()
	return p.cfg, nil
}

// readErr turns a lineReader error into the reply wireguard-go would give:
// it answers EIO when bufio.Scanner gives up on a long line.
func readErr(err error, line int) *Error {
	switch {
	case errors.Is(err, ErrLineTooLong):
		return &Error{Errno: unix.EIO, Line: line, Err: err}
	case errors.Is(err, ErrRequestTooLarge):
		return &Error{Errno: unix.EMSGSIZE, Line: line, Err: err, fatal: true}
	case errors.Is(err, ErrTruncated):
		return &Error{Errno: unix.EPROTO, Line: line, Err: err, fatal: true}
	default:
		return &Error{Errno: unix.EIO, Line: line, Err: err, fatal: true}
	}
}

func (p *setParser) line(line []byte) *Error {
	key, value, ok := bytes.Cut(line, []byte{'='})
	if !ok {
		return lineErr(unix.EPROTO, p.lr.n, "%w", ErrNoEquals)
	}
	if string(key) == "public_key" {
		return p.startPeer(value)
	}
	if !p.inPeer {
		return p.deviceLine(key, value)
	}
	return p.peerLine(key, value)
}

func (p *setParser) deviceLine(key, value []byte) *Error {
	switch string(key) {
	case "private_key":
		k, err := noise.ParsePrivateKeyHex(string(value))
		if err != nil {
			return p.invalid(key, nil, err)
		}
		if !k.IsZero() {
			k.Clamp()
		}
		if prev := p.cfg.PrivateKey; prev != nil {
			if len(p.cfg.ReplacedPrivateKeys) == device.MaxReplacedPrivateKeys {
				return lineErr(unix.EINVAL, p.lr.n, "%w: more than %d private_key lines", ErrInvalidValue, device.MaxReplacedPrivateKeys+1)
			}
			p.cfg.ReplacedPrivateKeys = append(p.cfg.ReplacedPrivateKeys, *prev)
		}
		p.cfg.PrivateKey = &k
	case "listen_port":
		n, err := strconv.ParseUint(string(value), 10, 16)
		if err != nil {
			return p.invalid(key, value, nil)
		}
		port := uint16(n)
		p.cfg.ListenPort = &port
	case "fwmark":
		n, err := strconv.ParseUint(string(value), 10, 32)
		if err != nil {
			return p.invalid(key, value, nil)
		}
		mark := uint32(n)
		p.cfg.FwMark = &mark
	case "replace_peers":
		if string(value) != "true" {
			return p.invalid(key, value, nil)
		}
		p.cfg.ReplacePeers = true
	default:
		return p.unknown("device", key)
	}
	return nil
}

func (p *setParser) startPeer(value []byte) *Error {
	p.endPeer()
	k, err := noise.ParsePublicKeyHex(string(value))
	if err != nil {
		return p.invalid([]byte("public_key"), value, err)
	}
	if len(p.cfg.Peers) >= p.limits.MaxPeers {
		return lineErr(unix.EMSGSIZE, p.lr.n, "%w: more than %d peers", ErrRequestTooLarge, p.limits.MaxPeers)
	}
	p.cfg.Peers = append(p.cfg.Peers, device.PeerConfig{PublicKey: k})
	p.inPeer, p.removed = true, false
	p.ipStart = len(p.ips)
	return nil
}

// startSequel ends the current entry and continues its section in a new
// one (device.PeerConfig.Sequel), for a flag that follows allowed_ip lines.
func (p *setParser) startSequel() *Error {
	if len(p.cfg.Peers) >= p.limits.MaxPeers {
		return lineErr(unix.EMSGSIZE, p.lr.n, "%w: more than %d peer entries", ErrRequestTooLarge, p.limits.MaxPeers)
	}
	p.endPeer()
	k := p.cfg.Peers[len(p.cfg.Peers)-1].PublicKey
	p.cfg.Peers = append(p.cfg.Peers, device.PeerConfig{PublicKey: k, Sequel: true})
	p.ipStart = len(p.ips)
	return nil
}

// endPeer hands the current peer its allowed IPs.
func (p *setParser) endPeer() {
	if !p.inPeer || p.removed {
		return
	}
	pc := &p.cfg.Peers[len(p.cfg.Peers)-1]
	if n := len(p.ips); n > p.ipStart {
		pc.AllowedIPs = p.ips[p.ipStart:n:n]
	}
}

func (p *setParser) peerLine(key, value []byte) *Error {
	pc := &p.cfg.Peers[len(p.cfg.Peers)-1]
	if p.removed {
		pc = &device.PeerConfig{} // checked like wireguard-go's dummy peer, then dropped
	}
	switch string(key) {
	case "update_only", "remove", "replace_allowed_ips":
		if string(value) != "true" {
			return p.invalid(key, value, nil)
		}
		return p.flag(string(key))
	case "preshared_key":
		k, err := noise.ParsePresharedKeyHex(string(value))
		if err != nil {
			return p.invalid(key, nil, err)
		}
		pc.PresharedKey = &k
	case "endpoint":
		ap, err := netip.ParseAddrPort(string(value))
		if err != nil {
			return p.invalid(key, value, nil)
		}
		pc.Endpoint = &ap
	case "persistent_keepalive_interval":
		n, err := strconv.ParseUint(string(value), 10, 16)
		if err != nil {
			return p.invalid(key, value, nil)
		}
		secs := uint16(n)
		pc.PersistentKeepalive = &secs
	case "allowed_ip":
		return p.allowedIP(value)
	case "protocol_version":
		if string(value) != "1" {
			return p.invalid(key, value, nil)
		}
		pc.ProtocolVersion = 1
	default:
		return p.unknown("peer", key)
	}
	return nil
}

// flag handles the three boolean peer keys. wireguard-go applies a
// request line by line, so a flag acts where it stands: after allowed_ip
// lines of its entry it starts a sequel entry, and the allowed IPs before
// it are still moved to the peer (taken from their old owners) before the
// flag takes them away again. Anywhere else its place does not matter.
// remove=true drops the rest of the entry, which wireguard-go would apply
// to a peer it removes anyway, and the rest of the section is only checked.
func (p *setParser) flag(key string) *Error {
	if p.removed {
		return nil
	}
	if len(p.ips) > p.ipStart {
		if err := p.startSequel(); err != nil {
			return err
		}
	}
	pc := &p.cfg.Peers[len(p.cfg.Peers)-1]
	switch key {
	case "update_only":
		pc.UpdateOnly = true
	case "remove":
		*pc = device.PeerConfig{PublicKey: pc.PublicKey, Sequel: pc.Sequel, Remove: true}
		p.removed = true
	case "replace_allowed_ips":
		pc.ReplaceAllowedIPs = true
	}
	return nil
}

func (p *setParser) allowedIP(value []byte) *Error {
	raw := value
	remove := len(value) > 0 && value[0] == '-'
	if remove {
		value = value[1:]
	}
	pfx, err := netip.ParsePrefix(string(value))
	if err != nil {
		return p.invalid([]byte("allowed_ip"), raw, nil)
	}
	if p.removed {
		return nil
	}
	if len(p.ips) >= p.limits.MaxAllowedIPs {
		return lineErr(unix.EMSGSIZE, p.lr.n, "%w: more than %d allowed IPs", ErrRequestTooLarge, p.limits.MaxAllowedIPs)
	}
	p.ips = append(p.ips, device.AllowedIPChange{Prefix: pfx.Masked(), Remove: remove})
	return nil
}

// invalid reports a bad value. Values of secret keys (shown is nil) are
// never echoed; others are quoted and cut short.
func (p *setParser) invalid(key, shown []byte, cause error) *Error {
	const maxShown = 64
	if len(shown) > maxShown {
		shown = shown[:maxShown]
	}
	// A key sent as some other value, or as a key name (listen_port=<key>,
	// <key>=1), would otherwise reach the log at the default level.
	key = []byte(conf.HideKeys(string(key)))
	if cause == nil {
		return lineErr(unix.EINVAL, p.lr.n, "%w for %s: %q", ErrInvalidValue, key, conf.HideKeys(string(shown)))
	}
	return lineErr(unix.EINVAL, p.lr.n, "%w for %s: %w", ErrInvalidValue, key, cause)
}

func (p *setParser) unknown(where string, key []byte) *Error {
	const maxShown = 64
	if len(key) > maxShown {
		key = key[:maxShown]
	}
	return lineErr(unix.EINVAL, p.lr.n, "%w: %s key %q", ErrUnknownKey, where, conf.HideKeys(string(key)))
}
