package device

import (
	"container/heap"
	mrand "math/rand/v2"
	"time"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
)

// The per-peer timers of whitepaper §6, as the kernel's timers.c arranges
// them. A timer is a deadline in the peer (guarded by Peer.mu) plus at most
// one entry in the device's heap; the event loop sleeps until the earliest
// entry. Pushing a deadline later than the queued entry costs no heap work:
// when the old entry comes due, the loop re-queues it at the new deadline.
// An idle device has an empty heap and the loop sleeps without a timeout.

type timerKind uint8

const (
	timerRetransmitHandshake timerKind = iota
	timerSendKeepalive
	timerNewHandshake
	timerZeroKeyMaterial
	timerPersistentKeepalive
	numTimers
)

// maxTimerHandshakes is how many retransmissions fit in REKEY_ATTEMPT_TIME.
const maxTimerHandshakes = int(noise.RekeyAttemptTime / noise.RekeyTimeout)

// rekeyTimeoutJitterMax is the random extra added to handshake retries.
const rekeyTimeoutJitterMax = 333 * time.Millisecond

// peerTimers is guarded by Peer.mu.
type peerTimers struct {
	deadline                [numTimers]time.Time // zero = not armed
	queued                  [numTimers]time.Time // deadline of the heap entry, zero = none
	handshakeAttempts       int
	needAnotherKeepalive    bool
	sentLastMinuteHandshake bool
}

type timerEntry struct {
	at   time.Time
	peer *Peer
	kind timerKind
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

// modTimerLocked arms timer k of p for at; p.mu is held.
func (d *Device) modTimerLocked(p *Peer, k timerKind, at time.Time) {
	t := &p.timers
	t.deadline[k] = at
	if !t.queued[k].IsZero() && !at.Before(t.queued[k]) {
		return
	}
	t.queued[k] = at
	d.loop.pushTimer(timerEntry{at: at, peer: p, kind: k})
}

func (d *Device) delTimerLocked(p *Peer, k timerKind) { p.timers.deadline[k] = time.Time{} }

func (d *Device) pendingLocked(p *Peer, k timerKind) bool { return !p.timers.deadline[k].IsZero() }

// jitter returns a random duration in [0, 333ms) for handshake retries.
// It needs no secrecy (the kernel and wireguard-go use a fast generator
// too), and it runs after every flush of data to a peer: math/rand/v2
// costs neither a system call nor an allocation, where d.rand.Read made
// its buffer escape to the heap each time.
func (d *Device) jitter() time.Duration {
	return mrand.N(rekeyTimeoutJitterMax)
}

// due is called by the loop for a heap entry whose time has come. It reports
// whether the timer really fires (it may have been moved or disarmed).
func (d *Device) due(e timerEntry, now time.Time) bool {
	p := e.peer
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.timers
	if !t.queued[e.kind].Equal(e.at) {
		return false // a newer entry for this timer exists
	}
	t.queued[e.kind] = time.Time{}
	at := t.deadline[e.kind]
	switch {
	case at.IsZero() || p.removed.Load():
		return false
	case at.After(now):
		t.queued[e.kind] = at
		d.loop.pushTimer(timerEntry{at: at, peer: p, kind: e.kind})
		return false
	}
	t.deadline[e.kind] = time.Time{}
	return true
}

// fire runs the expiry handler of a timer that came due, on the loop.
func (l *loop) fire(e timerEntry, now time.Time) {
	switch e.kind {
	case timerRetransmitHandshake:
		l.expiredRetransmitHandshake(e.peer, now)
	case timerSendKeepalive:
		l.expiredSendKeepalive(e.peer, now)
	case timerNewHandshake:
		l.expiredNewHandshake(e.peer)
	case timerZeroKeyMaterial:
		l.d.log.Debug("removing all keys: no new session for 3 x REJECT_AFTER_TIME", "peer", e.peer.short(), "after", 3*noise.RejectAfterTime)
		e.peer.zeroKeys()
	case timerPersistentKeepalive:
		l.sendKeepalive(e.peer)
	}
}

// expiredRetransmitHandshake is called after REKEY_TIMEOUT (+jitter) passed
// since an initiation without an answer. It retries until
// REKEY_ATTEMPT_TIME, then gives up and drops the staged packets.
func (l *loop) expiredRetransmitHandshake(p *Peer, now time.Time) {
	d := l.d
	p.mu.Lock()
	if p.timers.handshakeAttempts > maxTimerHandshakes {
		d.delTimerLocked(p, timerSendKeepalive)
		if !d.pendingLocked(p, timerZeroKeyMaterial) {
			d.modTimerLocked(p, timerZeroKeyMaterial, now.Add(3*noise.RejectAfterTime))
		}
		attempts := p.timers.handshakeAttempts
		p.mu.Unlock()
		d.log.Debug("handshake did not complete, giving up until more packets wait", "peer", p.short(), "attempts", attempts+1, "after", noise.RekeyAttemptTime)
		l.dropStaged(p)
		return
	}
	p.timers.handshakeAttempts++
	p.mu.Unlock()
	p.clearSource()
	d.hs.requestInitiation(p, true)
}

// expiredSendKeepalive is called after KEEPALIVE_TIMEOUT passed since data
// was received with nothing sent back: a keepalive acknowledges it.
func (l *loop) expiredSendKeepalive(p *Peer, now time.Time) {
	l.sendKeepalive(p)
	d := l.d
	p.mu.Lock()
	if p.timers.needAnotherKeepalive {
		p.timers.needAnotherKeepalive = false
		d.modTimerLocked(p, timerSendKeepalive, now.Add(noise.KeepaliveTimeout))
	}
	p.mu.Unlock()
}

// expiredNewHandshake is called after KEEPALIVE_TIMEOUT + REKEY_TIMEOUT
// passed since data was sent without anything received: the session may be
// dead, so start a new handshake.
func (l *loop) expiredNewHandshake(p *Peer) {
	p.clearSource()
	l.d.hs.requestInitiation(p, false)
}

// timersReceived is called after a run of authenticated packets from p
// was received, the last from ep (data: at least one was not a keepalive).
// Under one lock it records the endpoint (roaming), cancels the
// new-handshake timer (the peer is alive), restarts the persistent
// keepalive, and after data arms the passive keepalive (KEEPALIVE_TIMEOUT)
// or notes that another one is owed.
func (d *Device) timersReceived(p *Peer, ep conn.Endpoint, data bool, now time.Time) {
	p.mu.Lock()
	p.learnEndpointLocked(ep)
	d.authenticatedReceivedLocked(p, now)
	if data {
		d.dataReceivedLocked(p, now)
	}
	p.mu.Unlock()
}

// authenticatedReceivedLocked is called after any authenticated packet from
// p (data, keepalive, initiation or response; the kernel's
// wg_timers_any_authenticated_packet_received and _traversal); p.mu is
// held. It cancels the new-handshake timer and restarts the persistent
// keepalive: a peer that answers a rekey with only its response is alive,
// and when handshake messages did not count, the data that asked for the
// rekey had a second handshake follow 15 s later.
func (d *Device) authenticatedReceivedLocked(p *Peer, now time.Time) {
	d.delTimerLocked(p, timerNewHandshake)
	d.persistentKeepaliveLocked(p, now)
}

// timersSent is called after a run of authenticated packets to p was sent
// (data: at least one was not a keepalive). Under one lock: after data, arm
// the new-handshake timer (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT without an
// answer) unless armed; cancel the passive keepalive (this packet was it);
// restart the persistent keepalive.
func (d *Device) timersSent(p *Peer, data bool, now time.Time) {
	p.mu.Lock()
	if data && !d.pendingLocked(p, timerNewHandshake) {
		d.modTimerLocked(p, timerNewHandshake, now.Add(noise.KeepaliveTimeout+noise.RekeyTimeout+d.jitter()))
	}
	d.delTimerLocked(p, timerSendKeepalive)
	d.persistentKeepaliveLocked(p, now)
	p.mu.Unlock()
}

func (d *Device) persistentKeepaliveLocked(p *Peer, now time.Time) {
	if p.keepaliveInterval > 0 {
		d.modTimerLocked(p, timerPersistentKeepalive, now.Add(time.Duration(p.keepaliveInterval)*time.Second))
	}
}

func (d *Device) dataReceivedLocked(p *Peer, now time.Time) {
	if !d.pendingLocked(p, timerSendKeepalive) {
		d.modTimerLocked(p, timerSendKeepalive, now.Add(noise.KeepaliveTimeout))
	} else {
		p.timers.needAnotherKeepalive = true
	}
}

// timersHandshakeInitiatedLocked is called after an initiation was sent;
// p.mu is held.
func (d *Device) timersHandshakeInitiatedLocked(p *Peer, now time.Time) {
	d.modTimerLocked(p, timerRetransmitHandshake, now.Add(noise.RekeyTimeout+d.jitter()))
}

// timersHandshakeComplete is called after a handshake response was consumed
// (initiator) or the first data on a new session arrived (responder).
func (d *Device) timersHandshakeComplete(p *Peer, now time.Time) {
	p.mu.Lock()
	d.delTimerLocked(p, timerRetransmitHandshake)
	p.timers.handshakeAttempts = 0
	p.timers.sentLastMinuteHandshake = false
	p.mu.Unlock()
	p.lastHandshake.Store(now.UnixNano())
	d.counters.handshakesDone.Add(1)
}

// timersSessionDerived is called after a new session was derived: its keys
// are zeroed 3 x REJECT_AFTER_TIME later unless a newer one replaces them.
func (d *Device) timersSessionDerived(p *Peer, now time.Time) {
	p.mu.Lock()
	d.modTimerLocked(p, timerZeroKeyMaterial, now.Add(3*noise.RejectAfterTime))
	p.mu.Unlock()
}

// loop-side heap operations; the heap is guarded by loop.timerMu.
func (l *loop) pushTimer(e timerEntry) {
	l.timerMu.Lock()
	heap.Push(&l.timers, e)
	earliest := l.timers[0].at
	l.timerMu.Unlock()
	if earliest.Equal(e.at) {
		l.poll.wake()
	}
}

// runTimers fires every due timer and returns how long the loop may sleep
// (-1 = no timer armed).
func (l *loop) runTimers(now time.Time) time.Duration {
	for {
		l.timerMu.Lock()
		if len(l.timers) == 0 {
			l.timerMu.Unlock()
			return -1
		}
		if l.timers[0].at.After(now) {
			wait := l.timers[0].at.Sub(now)
			l.timerMu.Unlock()
			return wait
		}
		e := heap.Pop(&l.timers).(timerEntry)
		l.timerMu.Unlock()
		if l.d.due(e, now) {
			l.fire(e, now)
		}
	}
}
