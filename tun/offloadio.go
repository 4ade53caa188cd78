package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// This file is the I/O half of the offloads on a kernel TUN: opening with
// IFF_VNET_HDR, probing TUNSETOFFLOAD, and Read/Write that speak the
// virtio_net_hdr framing while the Device interface keeps speaking plain IP
// packets.

// Offloads is a set of TUN_F_* bits (include/uapi/linux/if_tun.h) the
// kernel accepted for a device. The zero value means "no offloads".
type Offloads uint32

// TUN_F_* bits for TUNSETOFFLOAD; x/sys/unix does not define them.
const (
	OffloadCsum Offloads = 0x01 // TUN_F_CSUM: partial checksums allowed
	OffloadTSO4 Offloads = 0x02 // TUN_F_TSO4
	OffloadTSO6 Offloads = 0x04 // TUN_F_TSO6
	OffloadUSO4 Offloads = 0x20 // TUN_F_USO4 (Linux 6.2+)
	OffloadUSO6 Offloads = 0x40 // TUN_F_USO6 (Linux 6.2+)
)

// String lists the offloads for logs and `wgd show --json`, "none" for
// the zero value, e.g. "csum,tso4,tso6,uso4,uso6".
func (o Offloads) String() string {
	if o == 0 {
		return "none"
	}
	names := []struct {
		bit  Offloads
		name string
	}{{OffloadCsum, "csum"}, {OffloadTSO4, "tso4"}, {OffloadTSO6, "tso6"}, {OffloadUSO4, "uso4"}, {OffloadUSO6, "uso6"}}
	var parts []string
	for _, n := range names {
		if o&n.bit != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// Options are the choices CreateWithOptions offers beyond Create.
type Options struct {
	// Offload opens the TUN with IFF_VNET_HDR and asks for checksum, TSO
	// and USO offload, falling back to fewer when the kernel refuses.
	Offload bool
	// Logger receives the one info line about a fallback; nil means
	// slog.Default().
	Logger *slog.Logger
}

// offloadBatch is BatchSize with offloads on. A 64 KiB TSO packet at the
// smallest IPv6 MTU (1280) with TCP timestamps carries 1208 bytes per
// segment, so 55 segments; 64 covers every super-packet at MTU >= 1280 in
// one Read. Smaller segments (a peer's small MSS) span two Reads.
const offloadBatch = 64

// offloadState is the per-device state of the offload path. The event loop
// owns it (Read and Write are single-goroutine); the scratch buffers are
// allocated once per device, so the hot path does not allocate.
type offloadState struct {
	active Offloads
	coal   Coalescer
	// drops counts packets read and dropped as unusable (ReadDrops).
	drops atomic.Uint64

	// rbuf holds the last super-packet read; pend says which of its
	// segments have not been handed out yet.
	rbuf []byte
	rlen int
	pend superPacket
	next int // index of the next segment to hand out; == pend.nseg when none

	stats offloadStats

	grp Grouper
	// ghdr, giov and gvec gather a merged super-packet for writev: its
	// headers, then each member's payload where it lies (no copy).
	ghdr [MaxGatherHeader]byte
	giov [][]byte
	gvec []unix.Iovec
	// interleave lets a write merge a flow's packets across other flows'
	// packets; set only when the TUN's send buffer is unlimited, see write.
	interleave bool
	zeroHdr    [VirtioNetHdrLen]byte
	iov        [2][]byte // writev vector for a single packet: header, packet
}

// offloadStats counts what the offload path did, for tests and for the
// engine's counters. The event loop owns them like the rest of the state.
type offloadStats struct {
	superReads uint64 // super-packets read from the kernel
	segments   uint64 // segments they were split into
	plainReads uint64 // single packets read
	superOut   uint64 // super-packets written
	mergedOut  uint64 // packets merged into them
	plainOut   uint64 // packets written alone
}

// setupOffload asks the kernel for the offloads, most first, and returns
// the state for what it accepted. A refusal is not an error: it is logged
// once at info level and the device carries on with less.
func setupOffload(fd int, name string, log *slog.Logger, want bool) *offloadState {
	log = logger(log)
	// Little-endian virtio_net_hdr on every host; on little-endian hosts
	// this is the default already, so a refusal changes nothing there.
	_ = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1)
	tries := []Offloads{
		OffloadCsum | OffloadTSO4 | OffloadTSO6 | OffloadUSO4 | OffloadUSO6,
		OffloadCsum | OffloadTSO4 | OffloadTSO6,
		0,
	}
	if !want {
		// A TUN handed over with IFF_VNET_HDR while offloads are off:
		// the header stays, the kernel is asked for no super-packets.
		tries = tries[2:]
	}
	st := &offloadState{
		rbuf: make([]byte, VirtioNetHdrLen+ipv6Hdr+maxIPPayload+1),
		giov: make([][]byte, 0, groupWindow+1),
		gvec: make([]unix.Iovec, 0, groupWindow+1),
	}
	st.interleave = sndbufUnlimited(fd)
	for i, o := range tries {
		err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, int(o))
		if err != nil {
			continue
		}
		st.active = o
		st.coal.UDP = o&(OffloadUSO4|OffloadUSO6) == OffloadUSO4|OffloadUSO6
		if i > 0 {
			log.Info("tun: kernel refused some offloads, using fewer", "dev", name, "offloads", o.String())
		}
		st.iov[0] = st.zeroHdr[:]
		return st
	}
	log.Info("tun: kernel refused all offloads", "dev", name)
	st.iov[0] = st.zeroHdr[:]
	return st
}

// tunGetSndbuf is TUNGETSNDBUF, _IOR('T', 211, int) in
// include/uapi/linux/if_tun.h; x/sys/unix does not define it.
const tunGetSndbuf = 0x800454d3

// sndbufUnlimited reports whether the TUN's send buffer is INT_MAX, the
// value tun.c starts every queue with: then write(2) never fails with
// EAGAIN (sock_alloc_send_pskb waits only on a full send buffer).
func sndbufUnlimited(fd int) bool {
	v, err := unix.IoctlGetInt(fd, tunGetSndbuf)
	return err == nil && v == math.MaxInt32
}

// read fills bufs with segments: first those left over from the last
// super-packet, then from new read(2)s, until bufs is full or the fd has
// nothing more. A malformed packet from the kernel is dropped; its error is
// returned only when nothing else was read, like readPackets does.
func (s *offloadState) read(fd int, bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) && n < len(sizes) {
		if s.next < s.pend.nseg {
			k, err := segmentRange(s.rbuf[VirtioNetHdrLen:s.rlen], s.pend, s.next, bufs[n:], sizes[n:], offset)
			n += k
			s.next += k
			if err != nil {
				s.next = s.pend.nseg // the caller's buffers are too small: drop the rest
				s.drops.Add(1)
				return n, nilIfSome(n, err)
			}
			continue
		}
		m, err := rawRead(fd, s.rbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, nilIfSome(n, mapErrno("read", err))
		}
		k, err := s.accept(m, bufs[n:], sizes[n:], offset)
		n += k
		if err != nil {
			s.drops.Add(1)
			return n, nilIfSome(n, err)
		}
	}
	return n, nil
}

// accept handles a fresh read of m bytes in rbuf: a single packet is
// copied out at once, a super-packet becomes pending.
func (s *offloadState) accept(m int, bufs [][]byte, sizes []int, offset int) (int, error) {
	hdr, err := DecodeVirtioNetHdr(s.rbuf[:m])
	if err != nil {
		return 0, err
	}
	pkt := s.rbuf[VirtioNetHdrLen:m]
	if hdr.GSOType == GSONone {
		s.stats.plainReads++
		return segmentNone(pkt, hdr, bufs, sizes, offset)
	}
	sp, err := parseSuper(pkt, hdr)
	if err != nil {
		return 0, err
	}
	s.pend, s.next, s.rlen = sp, 0, m
	s.stats.superReads++
	s.stats.segments += uint64(sp.nseg)
	return 0, nil
}

// nilIfSome drops err when n packets were read anyway: the caller gets
// them now, and a persistent condition shows up again on the next call.
func nilIfSome(n int, err error) error {
	if n > 0 {
		return nil
	}
	return err
}

// buffered returns how many segments of the last super-packet are waiting.
func (s *offloadState) buffered() int { return s.pend.nseg - s.next }

// write writes bufs[i][offset:], merging the packets of one flow also
// across other flows' packets (see Grouper). It keeps the Device.Write
// contract: the count covers every packet written or dropped, EAGAIN stops
// it with n < len(bufs), and a merged super-packet the kernel refuses is
// retried packet by packet before anything is dropped.
//
// Reordering and the count: groups are written in the order of their first
// packet, so when EAGAIN stops a window, every packet before the first
// unwritten group's head is written, but a written group may hold packets
// after it. Then n is one past the highest packet written, and the
// unwritten packets below n are dropped (and reported), so that exactly
// the first n were consumed and none is written twice. Interleaved merging
// is on only when the TUN's send buffer is unlimited (the kernel default,
// checked at setup), and then the kernel never answers EAGAIN; with a
// limited one only consecutive packets merge, as written groups then
// always form a prefix and nothing is ever dropped for EAGAIN.
func (s *offloadState) write(fd int, bufs [][]byte, offset int) (int, error) {
	var dropped error
	if s.active&(OffloadTSO4|OffloadTSO6) == 0 {
		for i, b := range bufs {
			if k, _, err := s.writeOnly(fd, b[offset:], &dropped); k == 0 {
				return i, joinDropped(dropped, err)
			}
		}
		return len(bufs), dropped
	}
	for i := 0; i < len(bufs); {
		k, err := s.writeWindow(fd, bufs[i:], offset, &dropped)
		i += k
		if err != nil {
			return i, joinDropped(dropped, err)
		}
	}
	return len(bufs), dropped
}

// writeWindow groups up to groupWindow packets of bufs and writes the
// groups. It returns how many leading packets were consumed and an error
// only for EAGAIN or a dead device.
func (s *offloadState) writeWindow(fd int, bufs [][]byte, offset int, dropped *error) (int, error) {
	win := bufs[:s.grp.Group(s.coal, bufs, offset, CoalesceBufSize, s.interleave)]
	written, hi := 0, 0 // packets written or dropped; 1 + the highest index among them
	for gi := range s.grp.Len() {
		k, last, err := s.writeGroup(fd, win, offset, gi, dropped)
		written += k
		hi = max(hi, last+1)
		if err != nil {
			if hi > written && *dropped == nil {
				*dropped = fmt.Errorf("tun: write blocked after a reordered group: %d packets dropped", hi-written)
			}
			return hi, err
		}
	}
	return len(win), nil
}

// writeGroup writes group gi of win and returns how many of its packets
// were consumed (in member order), the window index of the last of them
// (-1 for none) and an error only for EAGAIN or a dead device.
func (s *offloadState) writeGroup(fd int, win [][]byte, offset, gi int, dropped *error) (int, int, error) {
	n, head := s.grp.Size(gi), s.grp.Head(gi)
	if n == 1 {
		k, last, err := s.writeOnly(fd, win[head][offset:], dropped)
		return k, last + head, err
	}
	s.giov = s.grp.Gather(s.ghdr[:], s.giov, win, offset, gi)
	err := writeRetry(func() error { _, e := rawWritev(fd, s.giov, &s.gvec); return e })
	clear(s.giov) // drop the references to the caller's buffers
	switch {
	case err == nil:
		s.count(n)
		return n, s.grp.Tail(gi), nil
	case blocked(err):
		return 0, -1, mapErrno("write", err)
	}
	return s.writeSingly(fd, win, offset, gi, dropped)
}

// writeOnly writes one packet alone and returns 1 and 0 when it was
// consumed (written or dropped), or 0, -1 and the error for EAGAIN or a
// dead device.
func (s *offloadState) writeOnly(fd int, pkt []byte, dropped *error) (int, int, error) {
	err := s.writeOne(fd, pkt)
	switch {
	case err == nil:
		s.count(1)
	case blocked(err):
		return 0, -1, mapErrno("write", err)
	case *dropped == nil:
		*dropped = fmt.Errorf("tun: write packet: %w", err)
	}
	return 1, 0, nil
}

// blocked reports whether err stops a write batch: EAGAIN or a dead device.
func blocked(err error) bool {
	return err == unix.EAGAIN || err == unix.EBADFD || err == unix.EBADF
}

// count records a successful write of n packets.
func (s *offloadState) count(n int) {
	if n > 1 {
		s.stats.superOut++
		s.stats.mergedOut += uint64(n)
	} else {
		s.stats.plainOut++
	}
}

// writeSingly writes group gi, which the kernel refused as a super-packet,
// one packet at a time, in member order, like writeGroup it returns the
// count and last index consumed and stops early only for EAGAIN or a dead
// device.
func (s *offloadState) writeSingly(fd int, win [][]byte, offset, gi int, dropped *error) (int, int, error) {
	k, last := 0, -1
	for m := s.grp.Head(gi); m >= 0; m = s.grp.NextMember(m) {
		if c, _, err := s.writeOnly(fd, win[m][offset:], dropped); c == 0 {
			return k, last, err
		}
		k, last = k+1, m
	}
	return k, last, nil
}

// writeOne writes one plain packet behind a GSO_NONE header with writev,
// so the caller's buffer needs no headroom and nothing is copied.
func (s *offloadState) writeOne(fd int, pkt []byte) error {
	s.iov[1] = pkt
	err := writeRetry(func() error { _, e := rawWritev(fd, s.iov[:], &s.gvec); return e })
	s.iov[1] = nil
	return err
}

// writeRetry runs w again while it fails with EINTR.
func writeRetry(w func() error) error {
	for {
		if err := w(); err != unix.EINTR {
			return err
		}
	}
}

// joinDropped puts the first drop error, if any, in front of err.
func joinDropped(dropped, err error) error {
	if dropped != nil {
		return errors.Join(dropped, err)
	}
	return err
}

// logger returns l, or slog.Default() when l is nil.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
