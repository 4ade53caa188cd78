package device

import (
	"errors"
	"fmt"
	"time"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
)

// ErrInvalidConfig wraps every reason Apply rejects a transaction for,
// except a listen port in use (which wraps unix.EADDRINUSE).
var ErrInvalidConfig = errors.New("invalid configuration")

// Apply carries out one configuration transaction. Everything that can fail
// (validation, binding a new port, setting the fwmark) happens before the
// first change, so a transaction applies completely or not at all.
func (d *Device) Apply(cfg *Config) error {
	select {
	case <-d.closed:
		return ErrClosed
	default:
	}
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	if err := validate(cfg); err != nil {
		return err
	}
	newBind, err := d.prepareBind(cfg)
	if err != nil {
		return err
	}
	d.applyPrivateKeys(cfg)
	if cfg.FwMark != nil {
		d.fwmark = *cfg.FwMark
	}
	if newBind != nil {
		d.listenPort = newBind.Port()
		d.log.Info("listening", "port", d.listenPort)
		d.loop.post(func(l *loop) { l.swapBind(newBind) })
	}
	d.peersMu.Lock()
	if cfg.ReplacePeers {
		for p := d.peerList.head; p != nil; {
			next := p.nextInList
			d.removePeerLocked(p)
			p = next
		}
	}
	var keepalives []*Peer
	// created: the current section's peer did not exist before it.
	// dummy: an earlier entry of the section removed its peer, or kept it
	// from being created (update_only); wireguard-go then turns the
	// section into a dummy peer that ignores the rest, sequels included.
	created, dummy := false, false
	for i := range cfg.Peers {
		pc := &cfg.Peers[i]
		if !pc.Sequel {
			created = d.peers[pc.PublicKey] == nil
			dummy = false
		} else if dummy {
			continue
		}
		if p := d.applyPeerLocked(pc, created); p != nil {
			keepalives = append(keepalives, p)
		}
		if pc.Remove || (pc.UpdateOnly && created) {
			dummy = true
		}
	}
	d.peersMu.Unlock()
	if len(keepalives) > 0 {
		d.loop.post(func(l *loop) {
			for _, p := range keepalives {
				if !p.removed.Load() {
					l.sendKeepalive(p)
				}
			}
		})
	}
	return nil
}

func validate(cfg *Config) error {
	for i := range cfg.Peers {
		pc := &cfg.Peers[i]
		if pc.ProtocolVersion != 0 && pc.ProtocolVersion != 1 {
			return fmt.Errorf("%w: peer %s: protocol version %d is not supported", ErrInvalidConfig, pc.PublicKey, pc.ProtocolVersion)
		}
		if pc.Endpoint != nil && !pc.Endpoint.IsValid() {
			return fmt.Errorf("%w: peer %s: invalid endpoint", ErrInvalidConfig, pc.PublicKey)
		}
		for _, a := range pc.AllowedIPs {
			if !a.Prefix.IsValid() {
				return fmt.Errorf("%w: peer %s: invalid allowed IP %v", ErrInvalidConfig, pc.PublicKey, a.Prefix)
			}
		}
	}
	return nil
}

// prepareBind opens the new UDP sockets a port change needs, or sets a new
// fwmark on the current ones. The returned bind is swapped in by the loop.
func (d *Device) prepareBind(cfg *Config) (*conn.Bind, error) {
	mark := d.fwmark
	if cfg.FwMark != nil {
		mark = *cfg.FwMark
	}
	if cfg.ListenPort != nil && *cfg.ListenPort != d.listenPort {
		b, err := conn.OpenWith(*cfg.ListenPort, mark, d.connOpts)
		if err != nil {
			return nil, fmt.Errorf("listen on port %d: %w", *cfg.ListenPort, err)
		}
		return b, nil
	}
	if mark != d.fwmark {
		d.bindMu.RLock()
		err := d.bind.SetMark(mark)
		d.bindMu.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("set fwmark %#x: %w", mark, err)
		}
	}
	return nil, nil
}

// applyPrivateKeys sets the transaction's private keys in order, as
// wireguard-go's SetPrivateKey does line by line: a key equal to the one
// before is a no-op; any other makes its public key the device's own and
// removes the peer that has it, even for the zero key (from which
// wireguard-go derives a public key too). Then, if anything changed, the
// last key becomes the device identity. cfgMu is held.
func (d *Device) applyPrivateKeys(cfg *Config) {
	changed := false
	step := func(k noise.PrivateKey) {
		if k.Equal(d.ownPriv) {
			return
		}
		d.ownPriv, d.ownPub = k, publicKeyOf(k)
		d.peersMu.Lock()
		if p := d.peers[d.ownPub]; p != nil {
			d.removePeerLocked(p)
		}
		d.peersMu.Unlock()
		changed = true
	}
	for _, k := range cfg.ReplacedPrivateKeys {
		step(k)
	}
	if cfg.PrivateKey != nil {
		step(*cfg.PrivateKey)
	}
	if changed {
		d.setStatic(d.ownPriv)
	}
}

// publicKeyOf is the public key wireguard-go derives from a private key:
// the zero key included, which it clamps like any other (the kernel
// derives none from it).
func publicKeyOf(k noise.PrivateKey) noise.PublicKey {
	if k.IsZero() {
		k[31] = 0x40 // the zero key, clamped
	}
	return k.PublicKey()
}

// setStatic changes the device identity to priv (zero: none): every peer's
// precomputed static DH changes and every session stops sending (it still
// receives, as in the references). cfgMu is held.
func (d *Device) setStatic(priv noise.PrivateKey) {
	var static *noise.Static
	if !priv.IsZero() {
		static = noise.NewStatic(priv)
		d.cookies.SetLocal(static.Public())
	} else {
		d.cookies.SetLocal(noise.PublicKey{})
	}
	d.static.Store(static)
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	for p := d.peerList.head; p != nil; p = p.nextInList {
		p.mu.Lock()
		p.expireSendingLocked()
		p.hs.SetLocal(d.staticOrPlaceholder())
		// A handshake under the old identity can never complete: the next
		// packet starts one under the new identity at once, not up to
		// REKEY_TIMEOUT after the last attempt.
		p.lastSentHandshake = time.Time{}
		p.mu.Unlock()
	}
}

// staticOrPlaceholder is the identity new handshakes are built on. Without
// a private key it is a throwaway identity: no handshake is sent or answered
// until a real key is set, which replaces it in every peer.
func (d *Device) staticOrPlaceholder() *noise.Static {
	if s := d.static.Load(); s != nil {
		return s
	}
	return noise.NewStatic(noise.PrivateKey{})
}

// applyPeerLocked applies one peer entry; created says whether its section
// found the peer absent. peersMu is held. It returns the peer when a
// persistent keepalive was switched on, so that a first keepalive (and with
// it a handshake) goes out at once, as wireguard-go does.
func (d *Device) applyPeerLocked(pc *PeerConfig, created bool) *Peer {
	p := d.peers[pc.PublicKey]
	if pc.Remove || (pc.UpdateOnly && created) {
		// update_only on a peer its own section created: wireguard-go
		// creates it at public_key and removes it at update_only.
		if p != nil {
			d.removePeerLocked(p)
		}
		return nil
	}
	if p == nil {
		if pc.PublicKey.Equal(d.ownPub) {
			return nil // our own key: wireguard-go ignores such a peer too
		}
		p = newPeer(d, pc.PublicKey, d.staticOrPlaceholder())
		d.peers[pc.PublicKey] = p
		d.peerList.pushBack(p)
	}
	keepaliveOn := false
	p.mu.Lock()
	if pc.PresharedKey != nil {
		p.psk = *pc.PresharedKey
		p.hs.SetPresharedKey(p.psk)
	}
	if pc.Endpoint != nil {
		p.endpoint = conn.Endpoint{Dst: *pc.Endpoint, Ifindex: endpointScope(*pc.Endpoint)}
	}
	if pc.PersistentKeepalive != nil {
		keepaliveOn = p.keepaliveInterval == 0 && *pc.PersistentKeepalive > 0
		p.keepaliveInterval = *pc.PersistentKeepalive
		if p.keepaliveInterval == 0 {
			d.delTimerLocked(p, timerPersistentKeepalive)
		}
	}
	p.mu.Unlock()
	if pc.ReplaceAllowedIPs {
		d.allowedIPs.RemoveAll(p)
	}
	for _, a := range pc.AllowedIPs {
		if a.Remove {
			d.allowedIPs.Remove(a.Prefix.Masked(), p)
		} else {
			_ = d.allowedIPs.Insert(a.Prefix.Masked(), p) // valid: checked by validate
		}
	}
	if keepaliveOn {
		return p
	}
	return nil
}

func (d *Device) removePeerLocked(p *Peer) {
	p.removed.Store(true)
	delete(d.peers, p.public)
	d.peerList.remove(p)
	d.allowedIPs.RemoveAll(p)
	p.zeroKeys()
	d.loop.post(func(l *loop) { l.dropStaged(p) })
}

// Visit reports the device and then every peer, in the order they were
// added, for a UAPI `get`. The *PeerInfo is reused between calls.
func (d *Device) Visit(dev func(Info), peer func(*PeerInfo)) error {
	d.cfgMu.Lock()
	info := Info{ListenPort: d.listenPort, FwMark: d.fwmark}
	if s := d.static.Load(); s != nil {
		info.PrivateKey = s.Private()
	}
	d.cfgMu.Unlock()
	dev(info)
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	var pi PeerInfo
	for p := d.peerList.head; p != nil; p = p.nextInList {
		p.fillInfo(&pi)
		pi.AllowedIPs = d.allowedIPs.AppendPrefixes(pi.AllowedIPs[:0], p)
		peer(&pi)
	}
	return nil
}

func (p *Peer) fillInfo(pi *PeerInfo) {
	p.mu.Lock()
	pi.PublicKey = p.public
	pi.PresharedKey = p.psk
	ep := p.endpoint
	pi.PersistentKeepalive = p.keepaliveInterval
	p.mu.Unlock()
	pi.Endpoint = endpointWithZone(ep.Dst, ep.Ifindex)
	pi.ProtocolVersion = 1
	pi.LastHandshake = time.Time{}
	if ns := p.lastHandshake.Load(); ns != 0 {
		pi.LastHandshake = time.Unix(0, ns)
	}
	pi.RxBytes = p.rxBytes.Load()
	pi.TxBytes = p.txBytes.Load()
}
