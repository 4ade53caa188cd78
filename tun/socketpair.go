package tun

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Socketpair is a fake TUN for tests: one end of an AF_UNIX SOCK_DGRAM
// socketpair. Datagrams keep packet boundaries like a TUN does, and the fd is
// real, so the event loop polls it exactly as it polls a kernel TUN.
type Socketpair struct {
	fd   int
	name string

	// mu guards mtu and closed.
	mu     sync.Mutex
	mtu    int
	closed bool
}

var _ Device = (*Socketpair)(nil)

// NewSocketpair returns the device end (non-blocking) and the test's end as
// an *os.File, also non-blocking so that reads honour SetReadDeadline.
// Whatever the test writes to its end, the device Reads as one packet, and
// the other way round.
func NewSocketpair(name string, mtu int) (*Socketpair, *os.File, error) {
	if err := checkMTU(mtu); err != nil {
		return nil, nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("tun: socketpair: %w", err)
	}
	peer := os.NewFile(uintptr(fds[1]), name+"-peer")
	return &Socketpair{fd: fds[0], name: name, mtu: mtu}, peer, nil
}

// Name returns the name given to NewSocketpair.
func (s *Socketpair) Name() string { return s.name }

// Fd returns the device end's fd.
func (s *Socketpair) Fd() int { return s.fd }

// BatchSize returns how many packets one Read returns at most.
func (s *Socketpair) BatchSize() int { return readBatch }

// MTU returns the MTU last set.
func (s *Socketpair) MTU() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.mtu, nil
}

// SetMTU records a new MTU; nothing enforces it.
func (s *Socketpair) SetMTU(mtu int) error {
	if err := checkMTU(mtu); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mtu = mtu
	return nil
}

// Read reads up to len(bufs) datagrams without blocking; see Device.Read.
func (s *Socketpair) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return readPackets(s.fd, bufs, sizes, offset, nil)
}

// Write writes datagrams without blocking; see Device.Write. It returns
// ErrWouldBlock when the test's end has not read enough.
func (s *Socketpair) Write(bufs [][]byte, offset int) (int, error) {
	return writePackets(s.fd, bufs, offset)
}

// Close closes the device end; the test closes its own end.
func (s *Socketpair) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}
