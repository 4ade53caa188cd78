package device

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
	"github.com/wgdvpn/wgd/tun"
)

// The outbound path: TUN readable -> read a batch -> route each packet by
// destination (allowed IPs) -> assign the peer's next nonce in read order ->
// encrypt on a worker -> send the batch, in order, with one sendmmsg.

// readTUN reads packets and queues them for encryption, one job per Read
// call. With TUN offloads one read(2) returns a whole TSO super-packet cut
// into MTU-sized segments; those the call could not return stay buffered in
// the TUN device, where epoll cannot see them, so the loop also comes back
// here while tunBuffered says so.
func (l *loop) readTUN() error {
	d := l.d
	now := d.clock.Now()
	l.epPeer = nil
	l.lookups.reset()
	size := l.smallBufSize()
	bs := min(d.tun.BatchSize(), batchSize)
	bufs, sizes := l.readBufs[:bs], l.readSizes[:bs]
	for range maxTUNReads {
		for i := range bufs {
			bufs[i] = l.getSmall(size)
		}
		n, err := d.tun.Read(bufs, sizes, noise.TransportHeaderSize)
		var j *job
		for i := range n {
			if j == nil {
				j = l.getJob(true)
			}
			l.route(j, bufs[i], sizes[i], now)
			bufs[i] = nil
		}
		for i := n; i < bs; i++ {
			l.putBuf(bufs[i])
			bufs[i] = nil
		}
		if j != nil {
			l.submit(j)
		}
		switch {
		case err == nil && n == bs && len(l.encQ) < maxInflight:
			// A full batch: there may be more. A short one means the
			// TUN ran dry (Read stops at EAGAIN), so another Read would
			// only return EAGAIN.
			continue
		case err == nil || isWouldBlock(err):
		case errors.Is(err, tun.ErrDeleted):
			return err
		default:
			if !tun.IsDrop(err) {
				// Dropped packets the device counts itself (ReadDrops).
				d.counters.tunReadErrors.Add(1)
			}
			if held, ok := d.logLim.allow("tun read error", now); ok {
				logDrop(d.log, "tun read error", held, "err", err)
			}
		}
		return nil
	}
	return nil
}

// maxTUNReads bounds the Read calls per readiness event, so that the other
// direction gets its turn.
const maxTUNReads = 4

// tunBuffered reports how many segments the TUN holds back from an earlier
// super-packet (0 for devices without offloads).
func (l *loop) tunBuffered() int {
	if b, ok := l.d.tun.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

// route finds the peer for one packet read from the TUN and adds it to j,
// or stages or drops it. It takes over buf.
func (l *loop) route(j *job, buf []byte, n int, now time.Time) {
	d := l.d
	pkt := buf[noise.TransportHeaderSize : noise.TransportHeaderSize+n]
	dst, ok := destination(pkt)
	if !ok {
		d.counters.badInnerPacket.Add(1)
		if held, ok := d.logLim.allow("bad packet from the TUN", now); ok {
			logDrop(d.log, "bad packet from the TUN", held)
		}
		l.putBuf(buf)
		return
	}
	p, ok := l.lookups.lookup(&d.allowedIPs, dst)
	if !ok {
		d.counters.noRoute.Add(1)
		if held, ok := d.logLim.allow("no route", now); ok {
			logDrop(d.log, "no route", held, "dst", dst)
		}
		l.unreachable(pkt, now)
		l.putBuf(buf)
		return
	}
	if l.ownDatagram(p, pkt, dst) {
		// The host routes p's endpoint into this tunnel: sealing our
		// own datagram again would send it round and round.
		d.counters.routingLoop.Add(1)
		if held, ok := d.logLim.allow("routing loop", now); ok {
			logLoop(d.log, p, l.endpointOf(p).Dst, held)
		}
		l.putBuf(buf)
		return
	}
	// While packets wait for p's session, later ones queue behind them:
	// the session can be usable a moment before the loop runs the flush
	// the handshake posted, and a packet sealed then would overtake them.
	// Without a usable session each one still asks for a handshake, as
	// appendSeal would (the first may have asked when none could start,
	// e.g. before p had an endpoint).
	if len(p.staged) > 0 {
		l.session(p, now)
		l.stage(p, pkt)
		l.putBuf(buf)
		return
	}
	if !l.appendSeal(j, p, buf, n, now) {
		l.stage(p, pkt)
		l.putBuf(buf)
	}
}

// appendSeal adds a packet for p to j if p has a usable session and an
// endpoint, and asks for a new handshake when the session is getting old
// (whitepaper §6.2). It reports false when the packet must wait.
func (l *loop) appendSeal(j *job, p *Peer, buf []byte, n int, now time.Time) bool {
	d := l.d
	kp := l.session(p, now)
	if kp == nil {
		return false
	}
	ep := l.endpointOf(p)
	if !ep.Dst.IsValid() {
		return false
	}
	counter, ok := kp.NextCounter()
	if !ok {
		d.hs.requestInitiation(p, false)
		return false
	}
	if counter >= noise.RekeyAfterMessages || (kp.Initiator && now.Sub(kp.Created) >= noise.RekeyAfterTime) {
		d.hs.requestInitiation(p, false)
	}
	if cap(buf) < noise.SealedLen(n, j.mtu) {
		// A packet over the MTU (a route's MTU above the link's) that
		// fits its buffer but leaves no room for padding and tag.
		big := l.getBuf()
		copy(big[noise.TransportHeaderSize:], buf[noise.TransportHeaderSize:noise.TransportHeaderSize+n])
		l.putBuf(buf)
		buf = big
	}
	j.elems = append(j.elems, elem{buf: buf, n: n, kp: kp, counter: counter, ep: ep, own: true})
	return true
}

// session returns p's current session if it may still send, and otherwise
// asks for a handshake and returns nil.
func (l *loop) session(p *Peer, now time.Time) *keypair {
	kp := p.current.Load()
	if kp == nil || now.Sub(kp.Created) >= noise.RejectAfterTime {
		l.d.hs.requestInitiation(p, false)
		return nil
	}
	return kp
}

// endpointOf returns p's endpoint, read under p's lock once per batch:
// consecutive packets to one peer reuse the copy. Callers reset the cache
// (l.epPeer = nil) at the start of each batch.
func (l *loop) endpointOf(p *Peer) conn.Endpoint {
	if l.epPeer != p {
		l.ep = p.endpointCopy()
		l.epPeer = p
	}
	return l.ep
}

// submit hands a filled job to the workers and queues it for ordered
// completion; an empty job goes back to the free list.
func (l *loop) submit(j *job) {
	if len(j.elems) == 0 {
		l.putJob(j)
		return
	}
	q := &l.decQ
	if j.encrypt {
		q = &l.encQ
	}
	// A lone packet with nothing ahead of it is sealed or opened right here:
	// handing it to a worker and waking back up would cost more than the
	// crypto, and a ping must not wait for that. Without workers every
	// batch is.
	if l.d.workers.n == 0 || (len(*q) == 0 && len(j.elems) <= inlineMax) {
		runJob(j)
		j.done.Store(true)
		*q = append(*q, j)
		return
	}
	*q = append(*q, j)
	l.d.workers.jobs <- j
}

// inlineMax is the largest batch the loop encrypts or decrypts itself.
const inlineMax = 2

// stage keeps a copy of pkt until p has a session, dropping the oldest past
// maxStaged.
func (l *loop) stage(p *Peer, pkt []byte) {
	if p.removed.Load() {
		return
	}
	if len(p.staged) >= maxStaged {
		copy(p.staged, p.staged[1:])
		p.staged = p.staged[:len(p.staged)-1]
		l.d.counters.stagingOverflow.Add(1)
		l.d.logDropPeer("staging overflow", p)
	}
	p.staged = append(p.staged, append([]byte(nil), pkt...))
}

func (l *loop) dropStaged(p *Peer) {
	clear(p.staged)
	p.staged = nil
}

// sendStagedOrKeepalive runs when a session becomes usable: the staged
// packets go out, or else a keepalive confirms the session to the responder.
func (l *loop) sendStagedOrKeepalive(p *Peer) {
	if len(p.staged) == 0 {
		l.sendKeepalive(p)
		return
	}
	l.sendStaged(p)
}

func (l *loop) sendStaged(p *Peer) {
	now := l.d.clock.Now()
	l.epPeer = nil
	staged := p.staged
	p.staged = nil
	j := l.getJob(true)
	size := l.smallBufSize()
	for i, pkt := range staged {
		buf := l.getSmall(max(size, len(pkt)+bufOverhead))
		n := copy(buf[noise.TransportHeaderSize:], pkt)
		if !l.appendSeal(j, p, buf, n, now) {
			l.putBuf(buf)
			p.staged = append(p.staged, staged[i:]...)
			break
		}
	}
	l.submit(j)
}

// sendKeepalive sends an empty data message (whitepaper §6.5), if p has a
// session; otherwise it asks for a handshake.
func (l *loop) sendKeepalive(p *Peer) {
	if len(p.staged) > 0 {
		l.sendStaged(p)
		return
	}
	j := l.getJob(true)
	buf := l.getSmall(l.smallBufSize())
	l.epPeer = nil
	if !l.appendSeal(j, p, buf, 0, l.d.clock.Now()) {
		l.putBuf(buf)
	}
	l.submit(j)
}

// flushEncrypted sends finished encrypt batches in order. A full socket
// leaves the rest for the next EPOLLOUT.
func (l *loop) flushEncrypted() {
	for len(l.encQ) > 0 && !l.udpBlocked {
		j := l.encQ[0]
		if !j.done.Load() {
			return
		}
		if !j.processed {
			l.dropUnsealed(j)
			j.processed = true
		}
		l.sendMsgs = l.sendMsgs[:0]
		for i := j.pos; i < len(j.elems); i++ {
			e := &j.elems[i]
			l.sendMsgs = append(l.sendMsgs, conn.Message{Buf: e.out, Ep: e.ep})
		}
		n, err := l.bind.Write(l.sendMsgs)
		l.afterSend(j, n)
		if err != nil {
			if isWouldBlock(err) {
				l.udpBlocked = true
				return
			}
			// A datagram failed for good (no route to that peer, ...): Write
			// dropped it, marked it and counted it in n. Skip one more only
			// if nothing moved, so that a broken socket cannot spin the loop.
			l.d.counters.sendErrors.Add(uint64(max(refused(l.sendMsgs[:n]), 1)))
			if held, ok := l.d.logLim.allow("udp send error", l.d.clock.Now()); ok {
				logDrop(l.d.log, "udp send error", held, "err", err)
			}
			if n == 0 {
				j.pos++
			}
		}
		if j.pos >= len(j.elems) {
			for i := range j.elems {
				l.putBuf(j.elems[i].buf)
			}
			l.encQ = popJob(l.encQ)
			l.putJob(j)
		}
	}
}

// refused counts the messages Write dropped (N < 0).
func refused(msgs []conn.Message) int {
	k := 0
	for i := range msgs {
		if msgs[i].N < 0 {
			k++
		}
	}
	return k
}

// dropUnsealed removes the packets whose session was zeroed while they
// were being sealed (the peer was removed or its keys were wiped).
func (l *loop) dropUnsealed(j *job) {
	kept := j.elems[:0]
	for _, e := range j.elems {
		if e.out == nil {
			l.d.counters.noKey.Add(1)
			l.d.logDropPeer("no key", e.kp.peer)
			l.putBuf(e.buf)
			continue
		}
		kept = append(kept, e)
	}
	clear(j.elems[len(kept):])
	j.elems = kept
}

// afterSend does the accounting and timer events for the n datagrams of j
// just sent, once per run of packets to the same peer. Datagrams Write
// dropped (N < 0) add no bytes and do not count as data sent; the run
// still counts as an authenticated packet sent (keepalive timers), as in
// the kernel's wg_packet_create_data_done.
func (l *loop) afterSend(j *job, n int) {
	d := l.d
	now := d.clock.Now()
	sent := l.sendMsgs[:n]
	for i := 0; i < len(sent); {
		p := j.elems[j.pos+i].kp.peer
		var bytes uint64
		data := false
		k := i
		for ; k < len(sent) && j.elems[j.pos+k].kp.peer == p; k++ {
			e := &j.elems[j.pos+k]
			if sent[k].N < 0 {
				continue // refused by the kernel: not sent, as the kernel module counts
			}
			bytes += uint64(len(e.out))
			data = data || e.n > 0
			if e.ep.Src.IsValid() && !sent[k].Ep.Src.IsValid() {
				p.clearSource()
			}
		}
		p.txBytes.Add(bytes)
		d.timersSent(p, data, now)
		i = k
	}
	j.pos += n
}

// ownDatagram reports whether pkt, read from the TUN and routed to p, is
// a datagram of this device's UDP socket to p's endpoint: its source port
// is our listening port and it goes to the endpoint's address and port.
// No other program can send from that port, so it only happens when the
// route to the endpoint leads into the tunnel itself. A later IPv4
// fragment carries no UDP header and is not recognised; its first
// fragment is, so the datagram cannot be reassembled at the peer.
func (l *loop) ownDatagram(p *Peer, pkt []byte, dst netip.Addr) bool {
	var l4 []byte
	switch {
	case dst.Is4():
		ihl := int(pkt[0]&0x0f) * 4
		if pkt[9] != ipProtoUDP || ihl < ipv4HeaderLen || len(pkt) < ihl+8 || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
			return false
		}
		l4 = pkt[ihl:]
	default:
		if pkt[6] != ipProtoUDP || len(pkt) < ipv6HeaderLen+8 {
			return false
		}
		l4 = pkt[ipv6HeaderLen:]
	}
	if l.bind == nil || binary.BigEndian.Uint16(l4) != l.bind.Port() {
		return false
	}
	ep := l.endpointOf(p).Dst
	return binary.BigEndian.Uint16(l4[2:]) == ep.Port() && dst == ep.Addr().WithZone("")
}

// logLoop warns about a routing loop (at most once per interval: see
// logLimiter); unlike other drops it is a configuration error the admin
// must fix, so it is not a debug line.
func logLoop(log *slog.Logger, p *Peer, ep netip.AddrPort, held uint64) {
	args := []any{"peer", p.short(), "endpoint", ep}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	log.Warn("routing loop: a datagram to the peer's endpoint was routed back into the tunnel; route the endpoint outside it (dropped)", args...)
}

// destination returns the destination address of an IPv4 or IPv6 packet.
func destination(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte(pkt[16:20])), true
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return netip.Addr{}, false
		}
		return netip.AddrFrom16([16]byte(pkt[24:40])), true
	}
	return netip.Addr{}, false
}
