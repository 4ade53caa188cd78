// Package tun is the TUN side of wgd: a non-blocking fd that the event loop
// polls, batch read and write of raw IP packets, link configuration (MTU,
// IFF_UP) and link events. A socketpair fake with a real fd lets the whole
// engine run in tests without root.
package tun

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Device is a TUN interface as the event loop sees it: a non-blocking fd and
// batch I/O of raw IP packets. Read and Write are meant for one goroutine
// (the event loop); Name, MTU and Close may be called from any goroutine.
type Device interface {
	// Name returns the interface name as the kernel knows it now.
	Name() string
	// Fd returns the non-blocking fd the loop polls for EPOLLIN/EPOLLOUT.
	// It stays valid until Close.
	Fd() int
	// MTU returns the link MTU, also after the link moved to another
	// network namespace.
	MTU() (int, error)
	// Read reads up to len(bufs) packets without blocking; packet i lands
	// at bufs[i][offset:], its length in sizes[i]. It returns n > 0, or 0
	// and an error for which errors.Is(err, ErrWouldBlock) when nothing is
	// queued, or ErrDeleted once the link is gone. A packet larger than
	// bufs[i][offset:] (the kernel hands over packets up to a route's MTU,
	// which may exceed the link's) is either put in a new buffer that
	// replaces bufs[i], with GrowTail bytes to spare after it, or, where
	// the device cannot tell its size before reading it, dropped with
	// ErrPacketTooBig.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write writes the packets bufs[i][offset:] and returns how many were
	// consumed. When the device is full it returns n < len(bufs) and an
	// error for which errors.Is(err, ErrWouldBlock). A packet the kernel
	// rejects (malformed) is dropped and counted in n; the first such error
	// is returned after the rest of the batch was written.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize returns the most packets one Read returns.
	BatchSize() int
	// Close releases the fd; a TUN link that is not persistent disappears.
	Close() error
}

// ErrWouldBlock means "nothing to read" or "no room to write": the caller
// waits for epoll. It wraps EAGAIN so that errors.Is matches either, and it
// is returned as is, so the hot path does not allocate.
var ErrWouldBlock = fmt.Errorf("tun: would block: %w", unix.EAGAIN)

// ErrDeleted means the link behind the fd was deleted (the kernel detached
// the fd and answers EBADFD); the device is unusable and should be closed.
var ErrDeleted = fmt.Errorf("tun: link deleted: %w", unix.EBADFD)

// ErrPacketTooBig means a packet read without offloads was larger than its
// buffer, so only part of it was read: it was dropped (a route's MTU above
// the link's lets the kernel hand over packets larger than the link MTU).
var ErrPacketTooBig = errors.New("tun: packet larger than the read buffer dropped (a route MTU above the link MTU?)")

// IsDrop reports whether a Read error stands for a packet Read dropped as
// unusable, which Native counts in ReadDrops; other errors are the fd's.
func IsDrop(err error) bool {
	return errors.Is(err, ErrPacketTooBig) || errors.Is(err, ErrSuperPacket) ||
		errors.Is(err, ErrVnetHdr) || errors.Is(err, ErrTooManySegments)
}

// GrowTail is the room Read leaves after a packet it had to put in a buffer
// of its own because the caller's was too small (see Device.Read): enough
// for WireGuard's padding and tag.
const GrowTail = 64

// grow returns out if it holds offset+need bytes, else a new buffer of
// offset+need+GrowTail bytes that replaces it.
func grow(out []byte, offset, need int) []byte {
	if len(out)-offset >= need {
		return out
	}
	return make([]byte, offset+need+GrowTail)
}

// ErrClosed is returned by calls on a device after Close.
var ErrClosed = errors.New("tun: device closed")

// ErrBadMTU is returned for an MTU outside what an IP link can carry.
var ErrBadMTU = errors.New("tun: MTU out of range")

// Limits for SetMTU: IPv4 needs 68 bytes; 65535 is the largest IP packet.
const (
	minMTU = 68
	maxMTU = 65535
)

// EventKind says what changed on the link.
type EventKind uint8

// Link events, delivered on Native.Events.
const (
	// EventUp: the link is administratively up and running.
	EventUp EventKind = iota + 1
	// EventDown: the link went down.
	EventDown
	// EventMTU: the MTU changed; Event.MTU holds the new value.
	EventMTU
	// EventDeleted: the link was deleted; Read now returns ErrDeleted.
	EventDeleted
	// EventUnwatched: link messages cannot be followed any more
	// (Event.Err says why, e.g. the netlink subscription was refused):
	// MTU changes are no longer reported. Deletion still shows, as
	// ErrDeleted from Read. No event follows it.
	EventUnwatched
)

// String names the kind for logs.
func (k EventKind) String() string {
	switch k {
	case EventUp:
		return "up"
	case EventDown:
		return "down"
	case EventMTU:
		return "mtu"
	case EventDeleted:
		return "deleted"
	case EventUnwatched:
		return "unwatched"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one change of the link.
type Event struct {
	Kind EventKind
	MTU  int   // the new MTU for EventMTU, else 0
	Err  error // why, for EventUnwatched
}

func checkMTU(mtu int) error {
	if mtu < minMTU || mtu > maxMTU {
		return fmt.Errorf("%w: %d not in [%d, %d]", ErrBadMTU, mtu, minMTU, maxMTU)
	}
	return nil
}
