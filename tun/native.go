package tun

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Native is a kernel TUN device from /dev/net/tun in IFF_TUN|IFF_NO_PI mode:
// each read(2) or write(2) is one raw IP packet with no header in front, or,
// with offloads (CreateWithOptions), one packet or super-packet behind a
// virtio_net_hdr. Read and Write hide the difference.
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

	// off is the offload path's state, nil when the TUN was opened
	// without IFF_VNET_HDR. Only Read and Write use it.
	off *offloadState
	// drops counts the packets the plain Read dropped (ReadDrops).
	drops atomic.Uint64
}

var _ Device = (*Native)(nil)

// Create opens /dev/net/tun and attaches a new TUN link called name ("wg%d"
// lets the kernel pick the number), sets its MTU, and starts watching its
// link events. The fd is non-blocking and close-on-exec. The link is left
// down, as wireguard-go leaves it; call Up to bring it up. Create does not
// turn offloads on: it is CreateWithOptions with the zero Options, one raw
// IP packet per read(2) and write(2).
func Create(name string, mtu int) (*Native, error) {
	return CreateWithOptions(name, mtu, Options{})
}

// CreateWithOptions is Create with choices. With opts.Offload the TUN speaks
// virtio_net_hdr and the kernel may hand over TCP/UDP super-packets of up
// to 64 KiB, which Read segments; Write merges runs of one flow. Offloads
// the kernel refuses are left off (logged once at info level); Offloads
// says what is on.
func CreateWithOptions(name string, mtu int, opts Options) (*Native, error) {
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
	vnet, err := attach(fd, ifr, opts)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	noLinkLocal(ifr.Name())
	return newNative(fd, ifr.Name(), vnet, mtu, opts)
}

// noLinkLocal turns IPv6 address autoconfiguration off on the new link,
// as a kernel WireGuard interface has none: without it the kernel gives
// the TUN a random fe80:: address when it comes up, sends router
// solicitations into the tunnel (which no peer's allowed IPs route) and
// wg-quick save writes the address into the file. Addresses in the config
// (Address = fe80::1/64, as a routing daemon over the tunnel wants) are
// still added. Best effort: without IPv6 there is nothing to turn off.
func noLinkLocal(name string) {
	if link, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE)
	}
}

// FromFd takes over fd, a TUN another process attached (wireguard-go's
// WG_TUN_FD): it must be in IFF_TUN mode with IFF_NO_PI. With IFF_VNET_HDR
// set on it the offloads are set up as CreateWithOptions would (none when
// opts.Offload is false); without, it is one packet per read(2). The fd is
// made non-blocking and close-on-exec, its MTU set, and it is closed on any
// error.
func FromFd(fd int, mtu int, opts Options) (*Native, error) {
	name, vnet, err := checkHandedOver(fd, mtu)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newNative(fd, name, vnet, mtu, opts)
}

// checkHandedOver checks fd for FromFd and readies it; it returns the
// link's name and whether it speaks virtio_net_hdr.
func checkHandedOver(fd int, mtu int) (string, bool, error) {
	if err := checkMTU(mtu); err != nil {
		return "", false, err
	}
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", false, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return "", false, fmt.Errorf("tun: fd %d is not an attached TUN: %w", fd, err)
	}
	flags := ifr.Uint16()
	if flags&(unix.IFF_TUN|unix.IFF_TAP) != unix.IFF_TUN || flags&unix.IFF_NO_PI == 0 {
		return "", false, fmt.Errorf("tun: fd %d (%s) is not a TUN in IFF_TUN|IFF_NO_PI mode (flags %#x)", fd, ifr.Name(), flags)
	}
	vnet := flags&unix.IFF_VNET_HDR != 0
	if vnet {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VirtioNetHdrLen); err != nil {
			return "", false, fmt.Errorf("tun: TUNSETVNETHDRSZ on fd %d: %w", fd, err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return "", false, fmt.Errorf("tun: fd %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	return ifr.Name(), vnet, nil
}

// newNative finishes a device on an attached TUN fd: offloads, MTU, link
// watcher. It closes fd on error.
func newNative(fd int, name string, vnet bool, mtu int, opts Options) (*Native, error) {
	t := &Native{
		fd:     fd,
		name:   name,
		events: make(chan Event, 16),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	if vnet {
		t.off = setupOffload(fd, t.name, opts.Logger, opts.Offload)
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

// BatchSize returns how many packets one Read returns at most: readBatch,
// or offloadBatch with offloads, enough for a whole 64 KiB super-packet at
// MTU 1280 or more.
func (t *Native) BatchSize() int {
	if t.off != nil {
		return offloadBatch
	}
	return readBatch
}

// Offloads reports the offloads the kernel accepted for this device; zero
// when opened without them.
func (t *Native) Offloads() Offloads {
	if t.off == nil {
		return 0
	}
	return t.off.active
}

// Buffered returns how many segments of a super-packet are held inside the
// device, read from the kernel but not yet returned by Read. The fd does
// not poll readable for them, so the loop must call Read again (until
// ErrWouldBlock) before it waits on epoll; Buffered lets it check.
func (t *Native) Buffered() int {
	if t.off == nil {
		return 0
	}
	return t.off.buffered()
}

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
	if t.off != nil {
		return t.off.read(t.fd, bufs, sizes, offset)
	}
	return readPackets(t.fd, bufs, sizes, offset, &t.drops)
}

// ReadDrops counts the packets Read dropped because they could not be used:
// malformed offload packets, and without offloads packets larger than their
// buffer. Any goroutine may call it.
func (t *Native) ReadDrops() uint64 {
	n := t.drops.Load()
	if t.off != nil {
		n += t.off.drops.Load()
	}
	return n
}

// Write writes the packets without blocking; see Device.Write.
func (t *Native) Write(bufs [][]byte, offset int) (int, error) {
	if t.off != nil {
		return t.off.write(t.fd, bufs, offset)
	}
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

// attach binds fd to the link with TUNSETIFF and reports whether the
// virtio_net_hdr framing is on. With opts.Offload it asks for IFF_VNET_HDR
// first and falls back to plain framing if the kernel refuses.
func attach(fd int, ifr *unix.Ifreq, opts Options) (bool, error) {
	if opts.Offload {
		name := ifr.Name()
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EPERM) {
			return false, fmt.Errorf("tun: TUNSETIFF %q: %w", name, err)
		}
		logger(opts.Logger).Info("tun: kernel refused IFF_VNET_HDR, no offloads", "dev", name, "err", err)
		ifr, _ = unix.NewIfreq(name)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return false, fmt.Errorf("tun: TUNSETIFF %q: %w", ifr.Name(), err)
	}
	return false, nil
}
