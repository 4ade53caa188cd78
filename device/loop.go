package device

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device/conn"
	"github.com/wgdvpn/wgd/noise"
	"github.com/wgdvpn/wgd/tun"
)

const (
	// batchSize is the most packets read from one fd per readiness event.
	batchSize = 64
	// tcpBatch is the size at which a decrypt job holding TCP stops taking
	// datagrams (see readUDP). It plus one coalesced datagram's segments
	// (at most 64) stays within tun.WriteWindow.
	tcpBatch = 192
	// maxInflight bounds the batches between read and write in each
	// direction; past it the loop stops reading that source (back-pressure
	// instead of unbounded queues).
	maxInflight = 16
	// bufSize holds any IP packet a TUN can give (64 KiB) plus the transport
	// header, padding and tag.
	bufSize = 1<<16 + 64
	// maxFreeBufs bounds the small buffers kept for reuse (2 MiB at MTU
	// 1420); maxFreeLarge the 64 KiB ones (16 MiB), which a quiet moment
	// would otherwise leave parked in the free list.
	maxFreeBufs  = 2 * maxInflight * batchSize
	maxFreeLarge = 4 * batchSize
)

// loop is the event loop: one goroutine that owns the TUN and UDP fds, the
// packet buffers and the ordered queues of batches in flight. Other
// goroutines reach it through post (a command queue) and poll.wake.
type loop struct {
	d    *Device
	poll *poller

	tunFd  int
	tunIn  bool // EPOLLIN registered on the TUN
	tunOut bool // EPOLLOUT registered on the TUN
	udpFds []int
	udpIn  bool
	udpOut bool
	// tunBlocked / udpBlocked: the last write hit EAGAIN; wait for EPOLLOUT.
	tunBlocked bool
	udpBlocked bool
	// tcpOnly: the last decrypt job checked held only TCP packets.
	tcpOnly   bool
	bind      *conn.Bind // loop's view of d.bind; swapped in the loop only
	free      [][]byte   // large buffers
	freeSmall [][]byte   // small buffers of smallSize bytes
	smallSize int
	freeJobs  []*job
	encQ      []*job // encrypt batches in read order
	decQ      []*job // decrypt batches in read order
	readBufs  [][]byte
	readSizes []int
	msgs      []conn.Message
	sendMsgs  []conn.Message

	// epPeer/ep cache one peer's endpoint for the batch being built.
	epPeer *Peer
	ep     conn.Endpoint
	// route caches the last allowed-IPs lookup of the batch being read
	// or checked (lookup.go).
	lookups lookupCache

	icmpWindow time.Time
	icmpCount  int
	icmpBufs   [1][]byte
	// bcast caches the TUN's IPv4 directed broadcast addresses, read at
	// bcastAt (icmp.go).
	bcast   []netip.Addr
	bcastAt time.Time

	cmdMu sync.Mutex
	cmds  []func(*loop)

	timerMu sync.Mutex
	timers  timerHeap

	// wakeups counts returns from epoll_wait: an idle device must not
	// have any.
	wakeups atomic.Uint64
}

func newLoop(d *Device) (*loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &loop{
		d:         d,
		poll:      p,
		tunFd:     d.tun.Fd(),
		readBufs:  make([][]byte, batchSize),
		readSizes: make([]int, batchSize),
		msgs:      make([]conn.Message, batchSize),
		sendMsgs:  make([]conn.Message, 0, batchSize),
	}
	// The UDP receive buffers are made here, in one piece, not by the
	// first readUDP: 64 separate 64 KiB allocations there grew the heap
	// and started a GC cycle while a handshake initiation waited (10 ms
	// to answer the first one after start, against 1 ms for later ones).
	// Pages that no datagram has touched cost no memory.
	slab := make([]byte, batchSize*bufSize)
	for i := range batchSize {
		l.free = append(l.free, slab[i*bufSize:(i+1)*bufSize:(i+1)*bufSize])
	}
	d.workers.wake = p.wake
	if err := p.add(l.tunFd, unix.EPOLLIN); err != nil {
		p.close()
		return nil, err
	}
	l.tunIn = true
	if err := l.attachBind(d.bind); err != nil {
		p.close()
		return nil, err
	}
	return l, nil
}

// attachBind registers a bind's sockets with epoll.
func (l *loop) attachBind(b *conn.Bind) error {
	l.bind = b
	l.udpFds = b.Fds()
	for _, fd := range l.udpFds {
		if err := l.poll.add(fd, unix.EPOLLIN); err != nil {
			return err
		}
	}
	l.udpIn, l.udpOut = true, false
	return nil
}

// swapBind replaces the UDP sockets (listen port or fwmark change). Batches
// still queued for the old sockets are sent through the new ones.
func (l *loop) swapBind(nb *conn.Bind) {
	for _, fd := range l.udpFds {
		l.poll.remove(fd)
	}
	l.d.bindMu.Lock()
	old := l.d.bind
	l.d.bind = nb
	l.d.bindMu.Unlock()
	old.Close()
	if err := l.attachBind(nb); err != nil {
		l.d.fail(fmt.Errorf("register new UDP sockets: %w", err))
	}
}

// post runs f on the loop goroutine at its next iteration.
func (l *loop) post(f func(*loop)) {
	l.cmdMu.Lock()
	l.cmds = append(l.cmds, f)
	l.cmdMu.Unlock()
	l.poll.wake()
}

func (l *loop) runCommands() {
	l.cmdMu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.cmdMu.Unlock()
	for _, f := range cmds {
		f(l)
	}
}

// run is the loop. It returns nil when the device closes and an error when
// the TUN or epoll fails for good.
func (l *loop) run() error {
	for {
		select {
		case <-l.d.closed:
			return nil
		default:
		}
		l.runCommands()
		timeout := l.runTimers(l.d.clock.Now())
		l.flush()
		l.updateInterest()
		if l.tunIn && l.tunBuffered() > 0 {
			if err := l.readTUN(); err != nil {
				return err
			}
			continue
		}
		evs, _, err := l.poll.wait(timeout)
		if err != nil {
			return err
		}
		l.wakeups.Add(1)
		for _, ev := range evs {
			if err := l.handle(ev); err != nil {
				return err
			}
		}
		l.flush()
	}
}

func (l *loop) handle(ev unix.EpollEvent) error {
	fd := int(ev.Fd)
	if fd == l.tunFd {
		if ev.Events&unix.EPOLLOUT != 0 {
			l.tunBlocked = false
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 && l.tunIn {
			if err := l.readTUN(); err != nil {
				return err
			}
		}
		return nil
	}
	if ev.Events&unix.EPOLLOUT != 0 {
		l.udpBlocked = false
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLERR) != 0 && l.udpIn {
		l.readUDP(fd)
	}
	return nil
}

// flush finishes completed batches in order, in both directions.
func (l *loop) flush() {
	l.flushEncrypted()
	l.flushDecrypted()
}

// updateInterest registers EPOLLIN only while there is room for more
// batches and EPOLLOUT only while a write waits for room.
func (l *loop) updateInterest() {
	tunIn := len(l.encQ) < maxInflight
	tunOut := l.tunBlocked
	if tunIn != l.tunIn || tunOut != l.tunOut {
		l.tunIn, l.tunOut = tunIn, tunOut
		_ = l.poll.modify(l.tunFd, events(tunIn, tunOut))
	}
	udpIn := len(l.decQ) < maxInflight
	udpOut := l.udpBlocked
	if udpIn != l.udpIn || udpOut != l.udpOut {
		l.udpIn, l.udpOut = udpIn, udpOut
		for _, fd := range l.udpFds {
			_ = l.poll.modify(fd, events(udpIn, udpOut))
		}
	}
}

func events(in, out bool) uint32 {
	var e uint32
	if in {
		e |= unix.EPOLLIN
	}
	if out {
		e |= unix.EPOLLOUT
	}
	return e
}

// Packet buffers come in two sizes. Large ones (bufSize) receive UDP,
// where one buffer may hold a whole GRO-coalesced 64 KiB datagram. Small
// ones hold one packet of the current MTU plus the transport header,
// padding and tag: TUN reads, which the TUN splits to the MTU even with
// offloads, staged packets and keepalives. Both free lists are bounded and
// owned by the loop.

// bufOverhead is the room a small buffer keeps around an MTU-sized packet:
// header in front, padding and tag behind.
const bufOverhead = noise.TransportHeaderSize + 16 + noise.TagSize

// smallBufSize is the size of a small buffer for the current MTU.
func (l *loop) smallBufSize() int {
	return (l.d.MTU() + bufOverhead + 63) &^ 63
}

// getBuf takes a large buffer; getSmall a small one of size bytes; putBuf
// returns either. Loop only.
func (l *loop) getBuf() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return b
	}
	return make([]byte, bufSize)
}

func (l *loop) getSmall(size int) []byte {
	if size != l.smallSize {
		clear(l.freeSmall) // the MTU changed: start over
		l.freeSmall = l.freeSmall[:0]
		l.smallSize = size
	}
	if n := len(l.freeSmall); n > 0 {
		b := l.freeSmall[n-1]
		l.freeSmall[n-1] = nil
		l.freeSmall = l.freeSmall[:n-1]
		return b
	}
	return make([]byte, size)
}

func (l *loop) putBuf(b []byte) {
	switch {
	case cap(b) >= bufSize:
		if len(l.free) < maxFreeLarge {
			l.free = append(l.free, b[:bufSize])
		}
	case cap(b) == l.smallSize:
		if len(l.freeSmall) < maxFreeBufs {
			l.freeSmall = append(l.freeSmall, b[:l.smallSize])
		}
	}
}

func (l *loop) getJob(encrypt bool) *job {
	var j *job
	if n := len(l.freeJobs); n > 0 {
		j = l.freeJobs[n-1]
		l.freeJobs = l.freeJobs[:n-1]
	} else {
		j = &job{elems: make([]elem, 0, batchSize)}
	}
	j.encrypt = encrypt
	j.mtu = l.d.MTU()
	return j
}

// popJob drops q's head by shifting the rest down (at most maxInflight
// entries), so the queue keeps its backing array: re-slicing from the front
// would use it up and make a later append allocate.
func popJob(q []*job) []*job {
	n := copy(q, q[1:])
	q[n] = nil
	return q[:n]
}

func (l *loop) putJob(j *job) {
	j.reset()
	l.freeJobs = append(l.freeJobs, j)
}

// isWouldBlock reports whether err means "no room / nothing now, come back
// when epoll says so".
func isWouldBlock(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, tun.ErrWouldBlock) || errors.Is(err, conn.ErrWouldBlock)
}
