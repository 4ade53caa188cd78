package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

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

	// rbuf holds the last super-packet read; pend says which of its
	// segments have not been handed out yet.
	rbuf []byte
	rlen int
	pend superPacket
	next int // index of the next segment to hand out; == pend.nseg when none

	stats offloadStats

	wbuf    []byte // a merged super-packet being written
	zeroHdr [VirtioNetHdrLen]byte
	iov     [2][]byte // writev vector for a single packet: header, packet
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
func setupOffload(fd int, name string, log *slog.Logger) *offloadState {
	log = logger(log)
	// Little-endian virtio_net_hdr on every host; on little-endian hosts
	// this is the default already, so a refusal changes nothing there.
	_ = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1)
	tries := []Offloads{
		OffloadCsum | OffloadTSO4 | OffloadTSO6 | OffloadUSO4 | OffloadUSO6,
		OffloadCsum | OffloadTSO4 | OffloadTSO6,
		0,
	}
	st := &offloadState{
		rbuf: make([]byte, VirtioNetHdrLen+ipv6Hdr+maxIPPayload+1),
		wbuf: make([]byte, CoalesceBufSize),
	}
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
				return n, nilIfSome(n, err)
			}
			continue
		}
		m, err := unix.Read(fd, s.rbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, nilIfSome(n, mapErrno("read", err))
		}
		k, err := s.accept(m, bufs[n:], sizes[n:], offset)
		n += k
		if err != nil {
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

// write writes bufs[i][offset:], merging runs of one flow. It keeps the
// Device.Write contract: the count covers every packet written or dropped,
// EAGAIN stops it with n < len(bufs), and a merged super-packet the kernel
// refuses is retried packet by packet before anything is dropped.
func (s *offloadState) write(fd int, bufs [][]byte, offset int) (int, error) {
	var dropped error
	for i := 0; i < len(bufs); {
		n, size := 1, 0
		if s.active&(OffloadTSO4|OffloadTSO6) != 0 {
			n, size = s.coal.Next(bufs[i:], offset, s.wbuf)
		}
		var err error
		if n > 1 {
			err = writeRetry(func() error { _, e := unix.Write(fd, s.wbuf[:size]); return e })
		} else {
			err = s.writeOne(fd, bufs[i][offset:])
		}
		switch {
		case err == nil:
			s.count(n)
			i += n
			continue
		case err == unix.EAGAIN || err == unix.EBADFD || err == unix.EBADF:
			return i, joinDropped(dropped, mapErrno("write", err))
		}
		if n > 1 {
			k, e := s.writeSingly(fd, bufs[i:i+n], offset, &dropped)
			if e != nil {
				return i + k, joinDropped(dropped, e)
			}
		} else if dropped == nil {
			dropped = fmt.Errorf("tun: write packet %d: %w", i, err)
		}
		i += n
	}
	return len(bufs), dropped
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

// writeSingly writes a group the kernel refused as a super-packet one
// packet at a time; it returns early only for EAGAIN or a dead device.
func (s *offloadState) writeSingly(fd int, bufs [][]byte, offset int, dropped *error) (int, error) {
	for j, b := range bufs {
		err := s.writeOne(fd, b[offset:])
		switch {
		case err == nil:
		case err == unix.EAGAIN || err == unix.EBADFD || err == unix.EBADF:
			return j, mapErrno("write", err)
		default:
			if *dropped == nil {
				*dropped = fmt.Errorf("tun: write packet: %w", err)
			}
		}
	}
	return len(bufs), nil
}

// writeOne writes one plain packet behind a GSO_NONE header with writev,
// so the caller's buffer needs no headroom and nothing is copied.
func (s *offloadState) writeOne(fd int, pkt []byte) error {
	s.iov[1] = pkt
	err := writeRetry(func() error { _, e := unix.Writev(fd, s.iov[:]); return e })
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
