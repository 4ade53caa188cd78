package device

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
)

// maxStaged bounds the packets a peer holds while it has no session; past
// it the oldest is dropped and counted.
const maxStaged = 128

// keypair is a transport session together with the peer that owns it.
type keypair struct {
	*noise.Keypair
	peer *Peer
}

// Peer is one remote WireGuard peer.
type Peer struct {
	dev    *Device
	public noise.PublicKey

	// keypairs: the hot path reads current without a lock; writers hold mu.
	current  atomic.Pointer[keypair]
	previous atomic.Pointer[keypair]
	next     atomic.Pointer[keypair]

	rxBytes, txBytes atomic.Uint64
	lastHandshake    atomic.Int64 // wall-clock unix nanoseconds, 0 = never
	removed          atomic.Bool

	// handshakeQueued is set while an initiation request for this peer is
	// waiting for a handshake goroutine, so the loop asks only once.
	handshakeQueued   atomic.Bool
	initiationIsRetry atomic.Bool

	// mu guards the fields of this group.
	mu             sync.Mutex
	hs             *noise.Handshake
	handshakeIndex uint32 // index of the handshake in flight, 0 = none
	// lastSentHandshake is when we last sent an initiation or a
	// response: no initiation goes out within REKEY_TIMEOUT of either,
	// as in the kernel (last_sent_handshake), so that ours does not
	// overwrite a handshake we are answering.
	lastSentHandshake time.Time
	endpoint          conn.Endpoint // Dst invalid = unknown
	// badSource is a sticky source (Src, Ifindex, for Dst) that a route
	// check found leaving by another interface: packets that keep arriving
	// at that address must not teach it again (see learnEndpointLocked).
	badSource         conn.Endpoint
	psk               noise.PresharedKey
	keepaliveInterval uint16
	timers            peerTimers

	// staged holds packets waiting for a session. Owned by the loop
	// goroutine; no lock.
	staged [][]byte

	// prevInList/nextInList link the peer into the device's peerList
	// (guarded by Device.peersMu) so that `get` keeps insertion order.
	prevInList, nextInList *Peer
}

func newPeer(d *Device, pub noise.PublicKey, static *noise.Static) *Peer {
	p := &Peer{dev: d, public: pub}
	p.hs = noise.NewHandshake(static, pub, noise.PresharedKey{})
	return p
}

// endpointCopy returns the peer's endpoint under its lock.
func (p *Peer) endpointCopy() conn.Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endpoint
}

// clearSource drops the sticky local address, so that the next send lets the
// kernel choose (called after a retransmit or a failed send).
func (p *Peer) clearSource() {
	p.mu.Lock()
	p.endpoint.ClearSource()
	p.mu.Unlock()
}

// installKeypair adds a new session after a handshake, as the whitepaper
// §5.4.7 and the kernel's add_new_keypair do: the initiator may use it at
// once, so it becomes current and the old current becomes previous; the
// responder must wait for the initiator's first data message, so it becomes
// next. Called with p.mu held. Retired keypairs leave the index table.
func (p *Peer) installKeypair(kp *keypair) {
	d := p.dev
	if kp.Initiator {
		if nx := p.next.Swap(nil); nx != nil {
			d.retire(p.previous.Swap(nx))
			d.retire(p.current.Swap(kp))
		} else {
			d.retire(p.previous.Swap(p.current.Swap(kp)))
		}
		return
	}
	d.retire(p.next.Swap(kp))
	d.retire(p.previous.Swap(nil))
}

// receivedWith promotes next to current when the initiator's first data
// arrives on it. It reports whether a promotion happened (the handshake is
// then complete on the responder side).
func (p *Peer) receivedWith(kp *keypair) bool {
	if p.next.Load() != kp {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Load() != kp {
		return false
	}
	p.next.Store(nil)
	p.dev.retire(p.previous.Swap(p.current.Swap(kp)))
	return true
}

// zeroKeys forgets every session and the handshake in flight.
func (p *Peer) zeroKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.zeroKeysLocked()
}

func (p *Peer) zeroKeysLocked() {
	d := p.dev
	for _, slot := range []*atomic.Pointer[keypair]{&p.current, &p.previous, &p.next} {
		if kp := slot.Swap(nil); kp != nil {
			d.retire(kp)
			// Seal and Open check this flag, so a packet still in flight
			// with these keys is dropped, not sent.
			kp.Zero()
		}
	}
	p.dropHandshakeLocked()
}

// dropHandshakeLocked forgets the handshake in flight and its index.
// p.mu is held.
func (p *Peer) dropHandshakeLocked() {
	if p.handshakeIndex != 0 {
		p.dev.indices.remove(p.handshakeIndex)
		p.handshakeIndex = 0
	}
	p.hs.Clear()
}

// expireSendingLocked ends p's sessions for sending but not for
// receiving, and drops a handshake in progress, as the kernel module and
// wireguard-go do when the device's private key changes: what the peer
// still sends on the old session (it does not know the new key yet) is
// delivered and counted, and the next packet to it starts a handshake
// under the new identity. p.mu is held.
func (p *Peer) expireSendingLocked() {
	for _, slot := range []*atomic.Pointer[keypair]{&p.current, &p.next} {
		if kp := slot.Load(); kp != nil {
			kp.ExpireSending()
		}
	}
	p.dropHandshakeLocked()
}

// retire takes a keypair out of service. Its memory is not zeroed here:
// crypto workers may still hold it for a packet in flight; it becomes
// unreachable and is collected.
func (d *Device) retire(kp *keypair) {
	if kp == nil {
		return
	}
	d.indices.removeIf(kp.LocalIndex, kp)
}

// peerList is an intrusive doubly linked list of peers in insertion order.
type peerList struct {
	head, tail *Peer
	n          int
}

func (l *peerList) pushBack(p *Peer) {
	p.prevInList, p.nextInList = l.tail, nil
	if l.tail != nil {
		l.tail.nextInList = p
	} else {
		l.head = p
	}
	l.tail = p
	l.n++
}

func (l *peerList) remove(p *Peer) {
	if p.prevInList != nil {
		p.prevInList.nextInList = p.nextInList
	} else {
		l.head = p.nextInList
	}
	if p.nextInList != nil {
		p.nextInList.prevInList = p.prevInList
	} else {
		l.tail = p.prevInList
	}
	p.prevInList, p.nextInList = nil, nil
	l.n--
}

// short names the peer in logs as wireguard-go does: the first and last
// four characters of its base64 public key.
func (p *Peer) short() string {
	k := p.public.String()
	return k[:4] + "…" + k[len(k)-5:len(k)-1]
}

// learnEndpointLocked records ep, the address an authenticated packet from
// p came from and the local address and interface it arrived at, as p's
// endpoint (roaming); p.mu is held. A local address that the last route
// check found routing to ep.Dst out of another interface is not kept as
// the source: as in the kernel, which drops such a source at send, the
// kernel then picks one. Replies from a laptop's old LAN address out of a
// new uplink made its server roam to that private address (15 s outages).
func (p *Peer) learnEndpointLocked(ep conn.Endpoint) {
	if b := p.badSource; b.Src.IsValid() && ep == b {
		ep.ClearSource()
	}
	p.endpoint = ep
}
