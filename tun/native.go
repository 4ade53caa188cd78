package tun

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Native is a kernel TUN device from /dev/net/tun in IFF_TUN|IFF_NO_PI mode:
// each read(2) or write(2) is one raw IP packet with no header in front.
type Native struct {
	fd     int
	name   string // name at creation; Name asks the kernel for the current one
	events chan Event
	done   chan struct{} // closed by Close to stop the watcher
	exited chan struct{} // closed by the watcher when it has returned

	// mu guards closed and the fd's lifetime against the control calls
	// (MTU, SetMTU, Up, Name), which may run on any goroutine. Read and Write
	// do not take it: the event loop owns them and does not call them after
	// Close.
	mu     sync.RWMutex
	closed bool
}

var _ Device = (*Native)(nil)

// Create opens /dev/net/tun and attaches a new TUN link called name ("wg%d"
// lets the kernel pick the number), sets its MTU, and starts watching its
// link events. The fd is non-blocking and close-on-exec. The link is left
// down, as wireguard-go leaves it; call Up to bring it up.
func Create(name string, mtu int) (*Native, error) {
	if err := checkMTU(mtu); err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tun: interface name %q: %w", name, err)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tun: open /dev/net/tun: %w", err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: TUNSETIFF %q: %w", name, err)
	}
	t := &Native{
		fd:     fd,
		name:   ifr.Name(),
		events: make(chan Event, 16),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	if err := setMTU(fd, mtu); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w, err := newWatcher(fd, t.events, t.done)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	go func() {
		defer close(t.exited)
		w.run()
	}()
	return t, nil
}

// Name returns the link's current name (it follows renames); after the link
// is deleted or the device closed it returns the name given at creation.
func (t *Native) Name() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return t.name
	}
	if n, err := tunName(t.fd); err == nil {
		return n
	}
	return t.name
}

// Fd returns the non-blocking TUN fd for epoll.
func (t *Native) Fd() int { return t.fd }

// BatchSize returns how many packets one Read returns at most.
func (t *Native) BatchSize() int { return readBatch }

// MTU asks the kernel for the link MTU, in whatever namespace the link is.
func (t *Native) MTU() (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return 0, ErrClosed
	}
	return getMTU(t.fd)
}

// SetMTU sets the link MTU; the watcher reports it as EventMTU.
func (t *Native) SetMTU(mtu int) error {
	if err := checkMTU(mtu); err != nil {
		return err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	return setMTU(t.fd, mtu)
}

// Up sets IFF_UP on the link. The daemon does not call it by default (like
// wireguard-go, it leaves that to the admin or wg-quick); `wgd up` does.
func (t *Native) Up() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	return setUp(t.fd)
}

// Events delivers link changes for this device. The channel is closed when
// the device is closed, and after EventDeleted.
func (t *Native) Events() <-chan Event { return t.events }

// Read reads up to len(bufs) packets without blocking; see Device.Read.
func (t *Native) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return readPackets(t.fd, bufs, sizes, offset)
}

// Write writes the packets without blocking; see Device.Write.
func (t *Native) Write(bufs [][]byte, offset int) (int, error) {
	return writePackets(t.fd, bufs, offset)
}

// Close stops the event watcher, waits for it, and closes the fd. It is
// safe to call more than once.
func (t *Native) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.mu.Unlock()
	// The watcher uses the fd (TUNGETIFF); close it only once it is gone.
	<-t.exited
	return unix.Close(t.fd)
}
