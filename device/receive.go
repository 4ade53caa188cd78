package device

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
)

// The inbound path: UDP readable -> recvmmsg a batch -> switch on type and
// length -> handshake messages to the handshake goroutines, data messages
// to a decrypt batch -> workers open them -> the loop, in order, checks the
// replay window and the inner source against the peer's allowed IPs and
// writes the batch to the TUN.

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	ipProtoUDP    = 17
)

// readUDP reads one batch from a UDP socket. A datagram the kernel
// coalesced (UDP GRO) is walked segment by segment in its buffer.
func (l *loop) readUDP(fd int) {
	d := l.d
	for i := range l.msgs {
		l.msgs[i].Buf = l.getBuf()
	}
	n, err := l.bind.ReadCoalesced(fd, l.msgs)
	if err != nil && !isWouldBlock(err) {
		if held, ok := d.logLim.allow("udp read error", d.clock.Now()); ok {
			logDrop(d.log, "udp read error", held, "err", err)
		}
	}
	// Data messages go to decrypt jobs of about batchSize packets, cut at
	// datagram boundaries (a coalesced datagram's segments share its buffer,
	// which the job of its first segment returns). Without workers each job
	// is opened on submit and written to the TUN before the next one is
	// built: one read of 64 coalesced datagrams can hold thousands of
	// packets, and opening all of them before writing any would hand the
	// receiving application one burst larger than its socket buffer.
	//
	// TCP is the exception: its receiver has room, and a TUN write merges a
	// flow's segments into 64 KiB super-packets only within one job. Jobs
	// of 64 cut most of them in two (a 64 KiB TSO packet is 47 segments at
	// MTU 1420), doubling the writes and the ACKs they trigger. So while
	// the last job held only TCP, jobs grow to tcpBatch.
	var j *job
	for i := 0; i < n; {
		limit := l.decryptBatch()
		d.indices.mu.RLock()
		for ; i < n && (j == nil || len(j.elems) < limit); i++ {
			m := &l.msgs[i]
			if m.N == 0 {
				d.counters.badLength.Add(1) // truncated: larger than any WireGuard message
				d.logDropFrom("bad length", m.Ep.Dst)
				continue
			}
			seg := m.Seg
			if seg == 0 {
				seg = m.N
			}
			owned := false
			for off := 0; off < m.N; off += seg {
				if l.classify(&j, m.Buf, off, min(seg, m.N-off), m.Ep, !owned) {
					owned = true
				}
			}
			if owned {
				m.Buf = nil // taken by the job
			}
		}
		d.indices.mu.RUnlock()
		if j != nil {
			l.submit(j)
			j = nil
			if d.workers.n == 0 {
				l.flushDecrypted()
			}
		}
	}
	for i := range l.msgs {
		if l.msgs[i].Buf != nil {
			l.putBuf(l.msgs[i].Buf)
			l.msgs[i].Buf = nil
		}
	}
}

// classify routes one datagram, buf[off:off+n], by (type, length). It
// reports whether a decrypt job took it; own says whether that elem would
// be the one to return buf to the pool (the first of its buffer). Called
// with d.indices.mu read-locked.
func (l *loop) classify(j **job, buf []byte, off, n int, ep conn.Endpoint, own bool) bool {
	d := l.d
	msg := buf[off : off+n]
	typ, err := noise.MessageType(msg)
	if err != nil {
		if errors.Is(err, noise.ErrBadLength) {
			d.counters.badLength.Add(1) // a known type of the wrong size
			d.logDropFrom("bad length", ep.Dst)
		} else {
			d.counters.badType.Add(1)
			d.logDropFrom("bad type", ep.Dst)
		}
		return false
	}
	switch {
	case typ == noise.TypeTransport && len(msg) >= noise.KeepaliveSize:
		return l.addDecrypt(j, buf, off, n, ep, own)
	case typ == noise.TypeInitiation && len(msg) == noise.InitiationSize,
		typ == noise.TypeResponse && len(msg) == noise.ResponseSize,
		typ == noise.TypeCookieReply && len(msg) == noise.CookieReplySize:
		d.hs.enqueue(msg, ep)
		return false
	}
	d.counters.badLength.Add(1)
	d.logDropFrom("bad length", ep.Dst)
	return false
}

func (l *loop) addDecrypt(j **job, buf []byte, off, n int, ep conn.Endpoint, own bool) bool {
	d := l.d
	idx, _, err := noise.ParseTransportHeader(buf[off : off+n])
	if err != nil {
		d.counters.badLength.Add(1)
		d.logDropFrom("bad length", ep.Dst)
		return false
	}
	e, ok := d.indices.lookupLocked(idx)
	if !ok || e.kp == nil {
		d.counters.unknownIndex.Add(1)
		d.logDropFrom("unknown index", ep.Dst)
		return false
	}
	if *j == nil {
		*j = l.getJob(false)
	}
	(*j).elems = append((*j).elems, elem{buf: buf, off: off, n: n, kp: e.kp, ep: ep, own: own})
	return true
}

// flushDecrypted finishes decrypt batches in order: checks each packet once,
// then writes the good ones to the TUN, resuming after EAGAIN.
func (l *loop) flushDecrypted() {
	for len(l.decQ) > 0 && !l.tunBlocked {
		j := l.decQ[0]
		if !j.done.Load() {
			return
		}
		if !j.processed {
			l.checkDecrypted(j)
			j.processed = true
		}
		if j.pos < len(j.out) {
			n, err := l.d.tun.Write(j.out[j.pos:], 0)
			j.pos += n
			if err != nil {
				if isWouldBlock(err) {
					l.tunBlocked = true
					return
				}
				// The TUN dropped a packet it rejected and counted it in n.
				l.d.counters.tunWriteErrors.Add(1)
				if held, ok := l.d.logLim.allow("tun write error", l.d.clock.Now()); ok {
					logDrop(l.d.log, "tun write error", held, "err", err)
				}
				if n == 0 {
					j.pos++
				}
			}
			if j.pos < len(j.out) {
				continue
			}
		}
		for i := range j.elems {
			if j.elems[i].own {
				l.putBuf(j.elems[i].buf)
			}
		}
		l.decQ = popJob(l.decQ)
		l.putJob(j)
	}
}

// checkDecrypted applies, in order, what must not run in parallel: the
// replay window, session promotion, roaming, timers, and the inner source
// check against the peer's allowed IPs (whitepaper §5.4.6, §6).
func (l *loop) checkDecrypted(j *job) {
	d := l.d
	now := d.clock.Now()
	l.lookups.reset()
	var run receivedRun
	for i := range j.elems {
		e := &j.elems[i]
		if errors.Is(e.err, noise.ErrReplay) { // a counter past the key's limit
			d.counters.replay.Add(1)
			d.logDropFrom("replay", e.ep.Dst)
			continue
		}
		if e.err != nil {
			d.counters.decryptFailed.Add(1)
			d.logDropFrom("decrypt failed", e.ep.Dst)
			continue
		}
		kp := e.kp
		if now.Sub(kp.Created) >= noise.RejectAfterTime || !kp.Replay.Accept(e.counter) {
			d.counters.replay.Add(1)
			d.logDropFrom("replay", e.ep.Dst)
			continue
		}
		p := kp.peer
		if p.removed.Load() {
			continue
		}
		if p.receivedWith(kp) {
			d.timersHandshakeComplete(p, now)
			l.sendStaged(p)
		}
		if run.peer != p {
			l.finishReceived(&run, now)
			run = receivedRun{peer: p, kp: kp}
		}
		run.add(e)
		if pkt, ok := l.innerPacket(p, e.out); ok {
			j.out = append(j.out, pkt)
		}
	}
	l.finishReceived(&run, now)
	l.tcpOnly = allTCP(j.out)
}

// decryptBatch is the size at which readUDP stops adding datagrams to a
// decrypt job.
func (l *loop) decryptBatch() int {
	if l.d.workers.n == 0 && l.tcpOnly {
		return tcpBatch
	}
	return batchSize
}

// allTCP reports whether pkts is not empty and holds only TCP packets.
func allTCP(pkts [][]byte) bool {
	for _, pkt := range pkts {
		if !isTCP(pkt) {
			return false
		}
	}
	return len(pkts) > 0
}

// protoTCP is TCP's IP protocol number.
const protoTCP = 6

// isTCP reports whether pkt, an IP packet innerPacket let through,
// carries TCP directly after its fixed header.
func isTCP(pkt []byte) bool {
	if pkt[0]>>4 == 4 {
		return pkt[9] == protoTCP
	}
	return pkt[6] == protoTCP
}

// receivedRun gathers the bookkeeping of consecutive authenticated packets
// from one peer, so that it costs one lock per run, not per packet.
type receivedRun struct {
	peer  *Peer
	kp    *keypair
	ep    conn.Endpoint // source of the latest packet: roaming follows it
	bytes uint64
	data  bool
}

func (r *receivedRun) add(e *elem) {
	r.ep = e.ep
	r.bytes += uint64(e.n)
	r.data = r.data || len(e.out) > 0
	r.kp = e.kp
}

// finishReceived applies a run: endpoint, counters, timers (whitepaper §6).
func (l *loop) finishReceived(r *receivedRun, now time.Time) {
	p := r.peer
	if p == nil {
		return
	}
	p.rxBytes.Add(r.bytes)
	l.d.timersReceived(p, r.ep, r.data, now)
	l.keepKeyFresh(p, r.kp, now)
}

// keepKeyFresh: an initiator whose session nears REJECT_AFTER_TIME starts
// a handshake once, so that it is not the responder's job (whitepaper §6.2).
func (l *loop) keepKeyFresh(p *Peer, kp *keypair, now time.Time) {
	if !kp.Initiator || p.current.Load() != kp {
		return
	}
	if now.Sub(kp.Created) < noise.RejectAfterTime-noise.KeepaliveTimeout-noise.RekeyTimeout {
		return
	}
	p.mu.Lock()
	fire := !p.timers.sentLastMinuteHandshake
	p.timers.sentLastMinuteHandshake = true
	p.mu.Unlock()
	if fire {
		l.d.hs.requestInitiation(p, false)
	}
}

// innerPacket validates a decrypted payload: a keepalive is not delivered;
// otherwise it must be an IPv4 or IPv6 packet whose length fits and whose
// source address is one of p's allowed IPs. It returns the packet trimmed
// of padding.
func (l *loop) innerPacket(p *Peer, pt []byte) ([]byte, bool) {
	d := l.d
	if len(pt) == 0 {
		return nil, false
	}
	var src netip.Addr
	var n int
	switch pt[0] >> 4 {
	case 4:
		if len(pt) < ipv4HeaderLen {
			break
		}
		n = int(binary.BigEndian.Uint16(pt[2:4]))
		src = netip.AddrFrom4([4]byte(pt[12:16]))
	case 6:
		if len(pt) < ipv6HeaderLen {
			break
		}
		n = ipv6HeaderLen + int(binary.BigEndian.Uint16(pt[4:6]))
		src = netip.AddrFrom16([16]byte(pt[8:24]))
	}
	if !src.IsValid() || n > len(pt) || n < ipv4HeaderLen {
		d.counters.badInnerPacket.Add(1)
		if d.debugLogs() {
			if held, ok := d.logLim.allow("bad inner packet", d.clock.Now()); ok {
				// What was wrong: the version nibble, the length the
				// header claims and the length decrypted (padding
				// included).
				logDrop(d.log, "bad inner packet", held, "peer", p.short(),
					"version", pt[0]>>4, "header_len", n, "len", len(pt))
			}
		}
		return nil, false
	}
	if owner, ok := l.lookups.lookup(&d.allowedIPs, src); !ok || owner != p {
		d.counters.sourceNotAllowed.Add(1)
		if held, ok := d.logLim.allow("source not allowed", d.clock.Now()); ok {
			logDrop(d.log, "source not allowed", held, "src", src)
		}
		return nil, false
	}
	return pt[:n], true
}
