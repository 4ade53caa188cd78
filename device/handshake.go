package device

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
)

// Handshake messages are handled off the event loop, on their own
// goroutines: a Curve25519 multiplication costs tens of microseconds and the
// loop must never wait for one.

const (
	maxQueuedHandshakes = 4096
	// underLoadAfter is the backlog at which the device starts answering
	// initiations without a valid mac2 with cookie replies (kernel:
	// MAX_QUEUED_INCOMING_HANDSHAKES / 8).
	underLoadAfter = maxQueuedHandshakes / 8
	// underLoadHold keeps the device "under load" for a while after the
	// backlog shrinks, so that a flood cannot toggle it every packet.
	underLoadHold = time.Second
)

// hsMsg is one queued handshake datagram; owned by whoever holds the pointer.
type hsMsg struct {
	buf [noise.InitiationSize]byte
	n   int
	ep  conn.Endpoint
}

type handshakeQueue struct {
	d     *Device
	msgs  chan *hsMsg
	inits chan *Peer
	pool  sync.Pool
	stopc chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	// lastUnderLoad is the clock time (unix ns) the backlog was last found
	// past underLoadAfter.
	lastUnderLoad atomic.Int64
}

func newHandshakeQueue(d *Device, n int) *handshakeQueue {
	q := &handshakeQueue{
		d:     d,
		msgs:  make(chan *hsMsg, maxQueuedHandshakes),
		inits: make(chan *Peer, maxQueuedHandshakes),
		stopc: make(chan struct{}),
	}
	q.pool.New = func() any { return new(hsMsg) }
	for range n {
		q.wg.Add(1)
		go q.run()
	}
	return q
}

func (q *handshakeQueue) stop() {
	q.once.Do(func() {
		close(q.stopc)
		q.wg.Wait()
	})
}

// enqueue copies a handshake datagram for the goroutines; a full queue drops
// it (counted). Called by the loop.
func (q *handshakeQueue) enqueue(b []byte, ep conn.Endpoint) {
	m := q.pool.Get().(*hsMsg)
	m.n = copy(m.buf[:], b)
	m.ep = ep
	select {
	case q.msgs <- m:
	default:
		q.pool.Put(m)
		q.d.counters.handshakeBacklog.Add(1)
		q.d.logDropFrom("handshake backlog full", ep.Dst)
	}
}

// requestInitiation asks for a handshake initiation to p unless one is
// already queued; isRetry keeps the retransmission count. Safe from any
// goroutine.
func (q *handshakeQueue) requestInitiation(p *Peer, isRetry bool) {
	p.initiationIsRetry.Store(isRetry)
	if p.handshakeQueued.Swap(true) {
		return
	}
	select {
	case q.inits <- p:
	default:
		p.handshakeQueued.Store(false)
	}
}

func (q *handshakeQueue) underLoad(now time.Time) bool {
	if len(q.msgs) >= underLoadAfter {
		q.lastUnderLoad.Store(now.UnixNano())
		return true
	}
	last := q.lastUnderLoad.Load()
	return last != 0 && now.UnixNano()-last < int64(underLoadHold)
}

func (q *handshakeQueue) run() {
	defer q.wg.Done()
	for {
		select {
		case <-q.stopc:
			return
		case p := <-q.inits:
			p.handshakeQueued.Store(false)
			q.d.sendInitiation(p, p.initiationIsRetry.Load())
		case m := <-q.msgs:
			q.d.handleHandshakeMessage(m.buf[:m.n], m.ep)
			q.pool.Put(m)
		}
	}
}

// handleHandshakeMessage is the receive path for message types 1, 2 and 3:
// mac1, then (under load) mac2 or a cookie reply, then the rate limit, then
// the Noise step.
func (d *Device) handleHandshakeMessage(msg []byte, ep conn.Endpoint) {
	now := d.clock.Now()
	typ, err := noise.MessageType(msg)
	if err != nil {
		d.counters.badType.Add(1)
		d.logDropFrom("bad type", ep.Dst)
		return
	}
	if typ == noise.TypeCookieReply {
		d.handleCookieReply(msg, ep, now)
		return
	}
	if err := d.cookies.CheckMAC1(msg); err != nil {
		d.counters.invalidMAC1.Add(1)
		d.logDropFrom("invalid mac1", ep.Dst)
		return
	}
	if d.hs.underLoad(now) {
		if err := d.cookies.CheckMAC2(msg, ep.Dst, now); err != nil {
			d.counters.invalidMAC2.Add(1)
			d.logDropFrom("under load: no valid mac2, answered with a cookie", ep.Dst)
			d.sendCookieReply(msg, ep, now)
			return
		}
		if !d.limiter.allow(ep.Dst.Addr(), now) {
			d.counters.rateLimited.Add(1)
			d.logDropFrom("under load: rate limited", ep.Dst)
			return
		}
	}
	switch typ {
	case noise.TypeInitiation:
		d.handleInitiation(msg, ep, now)
	case noise.TypeResponse:
		d.handleResponse(msg, ep, now)
	}
}

func (d *Device) sendCookieReply(msg []byte, ep conn.Endpoint, now time.Time) {
	sender, err := noise.SenderIndex(msg)
	if err != nil {
		return
	}
	var buf [noise.CookieReplySize]byte
	reply, err := d.cookies.CreateReply(buf[:0], msg, sender, ep.Dst, now)
	if err != nil {
		return
	}
	if d.send(reply, &ep) == nil {
		d.counters.cookieSent.Add(1)
	}
}

func (d *Device) handleCookieReply(msg []byte, ep conn.Endpoint, now time.Time) {
	idx, err := noise.ReceiverIndex(msg)
	if err != nil {
		d.counters.badLength.Add(1)
		d.logDropFrom("bad length", ep.Dst)
		return
	}
	e, ok := d.indices.lookup(idx)
	if !ok {
		d.counters.unknownIndex.Add(1)
		d.logDropFrom("unknown index", ep.Dst)
		return
	}
	p := e.peer
	p.mu.Lock()
	err = p.hs.ConsumeCookieReply(msg, now)
	p.mu.Unlock()
	if err != nil {
		d.countHandshakeError(err, "cookie reply", ep, now)
		return
	}
	// The peer is under load: the next initiation (on the retransmit
	// timer, REKEY_TIMEOUT later) carries mac2.
	d.log.Debug("received cookie reply: the peer is under load", "peer", p.short(), "endpoint", ep.Dst)
}

// handleInitiation is the responder: consume the initiation, answer with a
// response, keep the new session as "next" until the initiator confirms it.
func (d *Device) handleInitiation(msg []byte, ep conn.Endpoint, now time.Time) {
	static := d.static.Load()
	if static == nil {
		return
	}
	res, err := static.OpenInitiation(msg)
	if err != nil {
		d.countHandshakeError(err, "handshake initiation", ep, now)
		return
	}
	d.peersMu.RLock()
	p := d.peers[res.Remote()]
	d.peersMu.RUnlock()
	if p == nil {
		d.counters.unknownPeer.Add(1)
		d.logDropFrom("initiation from unknown peer", ep.Dst)
		return
	}
	var buf [noise.ResponseSize]byte
	p.mu.Lock()
	resp, err := d.respondLocked(p, res, ep, now, buf[:0])
	if err == nil {
		p.lastSentHandshake = now
	}
	p.mu.Unlock()
	if err != nil {
		d.countHandshakeError(err, "handshake initiation", ep, now)
		return
	}
	d.log.Debug("received handshake initiation, sending response", "peer", p.short(), "endpoint", ep.Dst)
	d.sendHandshakeMessage(p, resp, ep)
	d.timersSessionDerived(p, now)
}

func (d *Device) respondLocked(p *Peer, res *noise.InitiationResult, ep conn.Endpoint, now time.Time, dst []byte) ([]byte, error) {
	if err := p.hs.ConsumeInitiation(res, now); err != nil {
		return nil, err
	}
	// An authenticated handshake message counts as received traffic, as in
	// the kernel and wireguard-go (rx_bytes), and for the timers.
	p.rxBytes.Add(noise.InitiationSize)
	d.authenticatedReceivedLocked(p, now)
	p.learnEndpointLocked(ep)
	if p.handshakeIndex != 0 {
		d.indices.remove(p.handshakeIndex)
		p.handshakeIndex = 0
	}
	idx, err := d.indices.newIndex(d.rand, p)
	if err != nil {
		return nil, err
	}
	resp, err := p.hs.CreateResponse(dst, now, idx, d.rand)
	if err != nil {
		d.indices.remove(idx)
		return nil, err
	}
	nk, err := p.hs.DeriveKeypair(now)
	if err != nil {
		d.indices.remove(idx)
		return nil, err
	}
	kp := &keypair{Keypair: nk, peer: p}
	d.indices.setKeypair(idx, kp)
	p.installKeypair(kp)
	return resp, nil
}

// handleResponse is the initiator's second step: the session is usable at
// once, and the first packet out (staged data or a keepalive) confirms it.
func (d *Device) handleResponse(msg []byte, ep conn.Endpoint, now time.Time) {
	idx, err := noise.ReceiverIndex(msg)
	if err != nil {
		d.counters.badLength.Add(1)
		d.logDropFrom("bad length", ep.Dst)
		return
	}
	e, ok := d.indices.lookup(idx)
	if !ok || e.kp != nil {
		d.counters.unknownIndex.Add(1)
		d.logDropFrom("unknown index", ep.Dst)
		return
	}
	p := e.peer
	p.mu.Lock()
	if p.handshakeIndex != idx {
		p.mu.Unlock()
		d.counters.unknownIndex.Add(1)
		d.logDropFrom("unknown index", ep.Dst)
		return
	}
	if err := p.hs.ConsumeResponse(msg, now); err != nil {
		p.mu.Unlock()
		d.countHandshakeError(err, "handshake response", ep, now)
		return
	}
	p.rxBytes.Add(noise.ResponseSize)
	d.authenticatedReceivedLocked(p, now)
	nk, err := p.hs.DeriveKeypair(now)
	if err != nil {
		p.mu.Unlock()
		d.countHandshakeError(err, "handshake response", ep, now)
		return
	}
	p.learnEndpointLocked(ep)
	kp := &keypair{Keypair: nk, peer: p}
	d.indices.setKeypair(idx, kp)
	p.handshakeIndex = 0
	p.installKeypair(kp)
	p.mu.Unlock()
	d.log.Debug("received handshake response, session up", "peer", p.short(), "endpoint", ep.Dst)
	d.timersSessionDerived(p, now)
	d.timersHandshakeComplete(p, now)
	d.loop.post(func(l *loop) { l.sendStagedOrKeepalive(p) })
}

// sendInitiation starts a handshake with p (whitepaper §5.4.2), at most once
// per REKEY_TIMEOUT. isRetry keeps the attempt count of the retransmit timer.
func (d *Device) sendInitiation(p *Peer, isRetry bool) {
	static := d.static.Load()
	if static == nil || p.removed.Load() {
		return
	}
	now := d.clock.Now()
	var buf [noise.InitiationSize]byte
	p.mu.Lock()
	if !isRetry {
		p.timers.handshakeAttempts = 0
	}
	if !p.lastSentHandshake.IsZero() && now.Sub(p.lastSentHandshake) < noise.RekeyTimeout {
		p.mu.Unlock()
		return
	}
	ep := p.endpoint
	if !ep.Dst.IsValid() {
		p.mu.Unlock()
		return
	}
	p.lastSentHandshake = now
	if p.handshakeIndex != 0 {
		d.indices.remove(p.handshakeIndex)
		p.handshakeIndex = 0
	}
	idx, err := d.indices.newIndex(d.rand, p)
	if err != nil {
		p.mu.Unlock()
		d.log.Error("handshake initiation", "err", err)
		return
	}
	msg, err := p.hs.CreateInitiation(buf[:0], now, idx, d.rand)
	if err != nil {
		d.indices.remove(idx)
		p.mu.Unlock()
		d.countHandshakeError(err, "handshake initiation", ep, now)
		return
	}
	p.handshakeIndex = idx
	attempt := p.timers.handshakeAttempts + 1
	d.timersHandshakeInitiatedLocked(p, now)
	p.mu.Unlock()
	d.log.Debug("sending handshake initiation", "peer", p.short(), "endpoint", ep.Dst, "attempt", attempt)
	d.sendHandshakeMessage(p, msg, ep)
}

// sendHandshakeMessage sends msg to ep and does the timer bookkeeping every
// authenticated packet sent gets.
func (d *Device) sendHandshakeMessage(p *Peer, msg []byte, ep conn.Endpoint) {
	hadSrc := ep.Src.IsValid()
	err := d.send(msg, &ep)
	if hadSrc && !ep.Src.IsValid() {
		p.clearSource()
	}
	if err != nil {
		return
	}
	p.txBytes.Add(uint64(len(msg)))
	d.timersSent(p, false, d.clock.Now())
}

// countHandshakeError counts a handshake message that failed (what, from
// ep) by its cause and logs it at the drop logs' rate, as wireguard-go logs
// "Received invalid ... message": a wrong preshared key or a peer with a
// stale key shows up there.
func (d *Device) countHandshakeError(err error, what string, ep conn.Endpoint, now time.Time) {
	reason := "handshake failed"
	switch {
	case errors.Is(err, noise.ErrBadLength):
		d.counters.badLength.Add(1)
		reason = "bad length"
	case errors.Is(err, noise.ErrUnknownPeer):
		d.counters.unknownPeer.Add(1)
		reason = "initiation from unknown peer"
	default:
		d.counters.handshakeFailed.Add(1)
	}
	if held, ok := d.logLim.allow(reason, now); ok {
		logDrop(d.log, reason, held, "message", what, "from", ep.Dst, "err", err)
	}
}
