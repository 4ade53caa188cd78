package ipc

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

// fakeDevice is an in-memory Device with the engine's all-or-nothing Apply
// and wireguard-go's semantics: zero private key or fwmark removes them, a
// peer with our own public key is ignored, an allowed IP moves from its old
// owner, peers are reported in the order they were added.
type fakeDevice struct {
	mu       sync.Mutex // guards everything below
	priv     noise.PrivateKey
	port     uint16
	fwmark   uint32
	peers    []*device.PeerInfo
	owner    map[netip.Prefix]*device.PeerInfo
	busyPort uint16 // Apply of this port fails with EADDRINUSE
	applies  int
}

func newFakeDevice() *fakeDevice {
	return &fakeDevice{owner: make(map[netip.Prefix]*device.PeerInfo)}
}

func (d *fakeDevice) Apply(cfg *device.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cfg.ListenPort != nil && *cfg.ListenPort != 0 && *cfg.ListenPort == d.busyPort {
		return fmt.Errorf("bind: %w", unix.EADDRINUSE)
	}
	for i := range cfg.Peers {
		if v := cfg.Peers[i].ProtocolVersion; v != 0 && v != 1 {
			return fmt.Errorf("protocol version %d", v)
		}
	}
	d.applies++
	if cfg.PrivateKey != nil {
		d.priv = *cfg.PrivateKey
	}
	if cfg.ListenPort != nil {
		d.port = *cfg.ListenPort
	}
	if cfg.FwMark != nil {
		d.fwmark = *cfg.FwMark
	}
	if cfg.ReplacePeers {
		for len(d.peers) > 0 {
			d.removePeer(d.peers[0])
		}
	}
	for i := range cfg.Peers {
		d.applyPeer(&cfg.Peers[i])
	}
	return nil
}

func (d *fakeDevice) lookup(k noise.PublicKey) *device.PeerInfo {
	for _, p := range d.peers {
		if p.PublicKey == k {
			return p
		}
	}
	return nil
}

func (d *fakeDevice) removePeer(p *device.PeerInfo) {
	for _, pfx := range p.AllowedIPs {
		delete(d.owner, pfx)
	}
	d.peers = slices.DeleteFunc(d.peers, func(q *device.PeerInfo) bool { return q == p })
}

func (d *fakeDevice) applyPeer(pc *device.PeerConfig) {
	if !d.priv.IsZero() && d.priv.PublicKey() == pc.PublicKey {
		return
	}
	p := d.lookup(pc.PublicKey)
	if pc.Remove {
		if p != nil {
			d.removePeer(p)
		}
		return
	}
	if p == nil {
		if pc.UpdateOnly {
			return
		}
		p = &device.PeerInfo{PublicKey: pc.PublicKey, ProtocolVersion: 1}
		d.peers = append(d.peers, p)
	}
	if pc.PresharedKey != nil {
		p.PresharedKey = *pc.PresharedKey
	}
	if pc.Endpoint != nil {
		p.Endpoint = *pc.Endpoint
	}
	if pc.PersistentKeepalive != nil {
		p.PersistentKeepalive = *pc.PersistentKeepalive
	}
	if pc.ReplaceAllowedIPs {
		for _, pfx := range p.AllowedIPs {
			delete(d.owner, pfx)
		}
		p.AllowedIPs = nil
	}
	for _, a := range pc.AllowedIPs {
		d.changeAllowedIP(p, a)
	}
}

func (d *fakeDevice) changeAllowedIP(p *device.PeerInfo, a device.AllowedIPChange) {
	pfx := a.Prefix.Masked()
	old := d.owner[pfx]
	if a.Remove {
		if old == p {
			delete(d.owner, pfx)
			p.AllowedIPs = slices.DeleteFunc(p.AllowedIPs, func(q netip.Prefix) bool { return q == pfx })
		}
		return
	}
	if old == p {
		return
	}
	if old != nil {
		old.AllowedIPs = slices.DeleteFunc(old.AllowedIPs, func(q netip.Prefix) bool { return q == pfx })
	}
	d.owner[pfx] = p
	p.AllowedIPs = append(p.AllowedIPs, pfx)
}

func (d *fakeDevice) Visit(dev func(device.Info), peer func(*device.PeerInfo)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev(device.Info{PrivateKey: d.priv, ListenPort: d.port, FwMark: d.fwmark})
	var pi device.PeerInfo
	for _, p := range d.peers {
		pi = *p
		pi.AllowedIPs = slices.Clone(p.AllowedIPs)
		peer(&pi)
	}
	return nil
}

// setHandshake records traffic for a peer, as the engine would after a
// handshake, so get output with non-zero counters can be tested.
func (d *fakeDevice) setStats(k noise.PublicKey, f func(*device.PeerInfo)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.lookup(k); p != nil {
		f(p)
	}
}

// setBusyPort makes Apply of port fail as a port in use would.
func (d *fakeDevice) setBusyPort(port uint16) {
	d.mu.Lock()
	d.busyPort = port
	d.mu.Unlock()
}

// appliedCount is how many transactions Apply accepted.
func (d *fakeDevice) appliedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applies
}
