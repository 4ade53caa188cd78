package ipc

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

// ParseGet reads a `get=1` reply, through its errno line and the blank line
// after it, into typed state. Like wg(8) it ignores keys it does not know,
// so a newer daemon can add some. A non-zero errno is returned as an *Error.
func ParseGet(r *bufio.Reader, limits Limits) (device.Info, []device.PeerInfo, error) {
	limits = limits.withDefaults()
	g := getParser{lr: newLineReader(r, limits.MaxLineBytes, limits.MaxRequestBytes), limits: limits}
	err := g.run()
	return g.info, g.peers, err
}

type getParser struct {
	lr     *lineReader
	limits Limits
	info   device.Info
	peers  []device.PeerInfo
	nIPs   int
	errno  *int64
	sec    int64
}

func (g *getParser) run() error {
	for {
		line, err := g.lr.next()
		if err != nil {
			return fmt.Errorf("%w: line %d: %w", ErrBadReply, g.lr.n, err)
		}
		if len(line) == 0 {
			break
		}
		key, value, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			return fmt.Errorf("%w: line %d: %w", ErrBadReply, g.lr.n, ErrNoEquals)
		}
		if err := g.line(string(key), string(value)); err != nil {
			return fmt.Errorf("%w: line %d: %s: %w", ErrBadReply, g.lr.n, key, err)
		}
	}
	switch {
	case g.errno == nil:
		return fmt.Errorf("%w: no errno line", ErrBadReply)
	case *g.errno != 0:
		return &Error{Errno: unix.Errno(-*g.errno), Err: fmt.Errorf("daemon answered errno=%d", *g.errno)}
	}
	return nil
}

func (g *getParser) line(key, value string) error {
	if key == "errno" {
		n, err := strconv.ParseInt(value, 10, 32)
		g.errno = &n
		return err
	}
	if key == "public_key" {
		k, err := noise.ParsePublicKeyHex(value)
		if len(g.peers) >= g.limits.MaxPeers {
			return ErrRequestTooLarge
		}
		g.peers = append(g.peers, device.PeerInfo{PublicKey: k})
		return err
	}
	if len(g.peers) == 0 {
		return g.deviceLine(key, value)
	}
	return g.peerLine(&g.peers[len(g.peers)-1], key, value)
}

func (g *getParser) deviceLine(key, value string) error {
	var err error
	switch key {
	case "private_key":
		g.info.PrivateKey, err = noise.ParsePrivateKeyHex(value)
	case "listen_port":
		var n uint64
		n, err = strconv.ParseUint(value, 10, 16)
		g.info.ListenPort = uint16(n)
	case "fwmark":
		var n uint64
		n, err = strconv.ParseUint(value, 10, 32)
		g.info.FwMark = uint32(n)
	}
	return err
}

func (g *getParser) peerLine(pi *device.PeerInfo, key, value string) error {
	var err error
	var n uint64
	switch key {
	case "preshared_key":
		pi.PresharedKey, err = noise.ParsePresharedKeyHex(value)
	case "protocol_version":
		var v int64
		v, err = strconv.ParseInt(value, 10, 32)
		pi.ProtocolVersion = int(v)
	case "endpoint":
		pi.Endpoint, err = netip.ParseAddrPort(value)
	case "last_handshake_time_sec":
		g.sec, err = strconv.ParseInt(value, 10, 64)
	case "last_handshake_time_nsec":
		var ns int64
		if ns, err = strconv.ParseInt(value, 10, 64); err == nil && (g.sec != 0 || ns != 0) {
			pi.LastHandshake = time.Unix(g.sec, ns)
		}
		g.sec = 0
	case "tx_bytes":
		pi.TxBytes, err = strconv.ParseUint(value, 10, 64)
	case "rx_bytes":
		pi.RxBytes, err = strconv.ParseUint(value, 10, 64)
	case "persistent_keepalive_interval":
		n, err = strconv.ParseUint(value, 10, 16)
		pi.PersistentKeepalive = uint16(n)
	case "allowed_ip":
		var pfx netip.Prefix
		if pfx, err = netip.ParsePrefix(value); err == nil {
			if g.nIPs++; g.nIPs > g.limits.MaxAllowedIPs {
				return ErrRequestTooLarge
			}
			pi.AllowedIPs = append(pi.AllowedIPs, pfx)
		}
	}
	return err
}
