package conn

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// socketBufSize is the receive and send buffer we ask for: large enough to
// absorb a burst of a few thousand full-size datagrams while the loop is
// busy, the same order as wireguard-go's 7 MiB.
const socketBufSize = 7 << 20

// maxPortTries bounds the search for a random port free in both families.
const maxPortTries = 100

// Bind is the pair of UDP sockets of one device. Read and Write belong to
// one goroutine (the event loop) and do not allocate; Send may be called
// from any goroutine. Close must not run concurrently with Read or Write.
type Bind struct {
	port uint16
	fd4  atomic.Int32 // -1 when closed
	fd6  atomic.Int32 // -1 when absent (IPv6 disabled) or closed
	fds  []int

	rx batch // Read's scratch, owned by the loop goroutine
	tx batch // Write's scratch, owned by the loop goroutine

	off4, off6 offload // per-socket offload state, see offload
	stats      bindStats
	log        *slog.Logger

	// sendMu guards one (Send's scratch) and closed, and orders Send
	// against Close so Send never uses a closed, possibly reused, fd.
	sendMu sync.Mutex
	one    single
	closed bool
}

// Open opens udp4 0.0.0.0:port and udp6 [::]:port (IPV6_V6ONLY). Port 0
// picks a random port, retried until both families get the same one. When
// the host has no IPv6 the Bind is IPv4 only, which is not an error. A port
// in use is returned wrapped, so errors.Is(err, unix.EADDRINUSE) holds.
// fwmark != 0 sets SO_MARK on both sockets. UDP GSO and GRO are turned on
// where the kernel has them (see Offloads); what it lacks is logged once to
// slog.Default().
func Open(port uint16, fwmark uint32) (*Bind, error) {
	return OpenWith(port, fwmark, Options{})
}

// OpenWith is Open with Options: a logger, and offloads kept off.
func OpenWith(port uint16, fwmark uint32, opts Options) (*Bind, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	for try := 0; try < maxPortTries; try++ {
		fd4, got, err := listen(unix.AF_INET, port, fwmark)
		if err != nil {
			return nil, fmt.Errorf("conn: udp4 port %d: %w", port, err)
		}
		fd6, _, err := listen(unix.AF_INET6, got, fwmark)
		switch {
		case err == nil:
			return newBind(got, fd4, fd6, opts), nil
		case v6Unavailable(err):
			return newBind(got, fd4, -1, opts), nil
		}
		unix.Close(fd4)
		if port == 0 && errors.Is(err, unix.EADDRINUSE) {
			continue
		}
		return nil, fmt.Errorf("conn: udp6 port %d: %w", got, err)
	}
	return nil, fmt.Errorf("conn: no port free in both families after %d tries: %w", maxPortTries, unix.EADDRINUSE)
}

func newBind(port uint16, fd4, fd6 int, opts Options) *Bind {
	b := &Bind{port: port, fds: []int{fd4}, log: opts.Log}
	b.fd4.Store(int32(fd4))
	b.fd6.Store(int32(fd6))
	b.initOffload(&b.off4, fd4, unix.AF_INET, opts)
	if fd6 >= 0 {
		b.fds = append(b.fds, fd6)
		b.initOffload(&b.off6, fd6, unix.AF_INET6, opts)
	}
	b.rx.init()
	b.tx.init()
	b.one.init()
	return b
}

// v6Unavailable reports errors that mean the host has no IPv6 at all
// (ipv6.disable=1 boot option, or no address usable for [::]).
func v6Unavailable(err error) bool {
	return errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT) ||
		errors.Is(err, unix.EADDRNOTAVAIL)
}

// listen opens one non-blocking UDP socket bound to the wildcard address
// of family on port and returns it with the port it got.
func listen(family int, port uint16, fwmark uint32) (int, uint16, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, 0, err
	}
	if err := configure(fd, family, fwmark); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Port: int(port)}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return fd, uint16(a.Port), nil
	case *unix.SockaddrInet6:
		return fd, uint16(a.Port), nil
	}
	unix.Close(fd)
	return -1, 0, unix.EAFNOSUPPORT
}

// configure sets the socket options before bind.
func configure(fd, family int, fwmark uint32) error {
	setBufs(fd)
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
	} else if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
		return fmt.Errorf("IP_PKTINFO: %w", err)
	}
	if fwmark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(fwmark)); err != nil {
			return fmt.Errorf("SO_MARK: %w", err)
		}
	}
	return nil
}

// setBufs asks for large socket buffers: the FORCE variants ignore
// net.core.[rw]mem_max but need CAP_NET_ADMIN; without it the plain
// options get as much as the sysctl allows. Both are best effort on
// purpose: a smaller buffer only means earlier drops under load.
func setBufs(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBufSize)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBufSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBufSize)
	}
}

// Port returns the UDP port both sockets are bound to.
func (b *Bind) Port() uint16 { return b.port }

// Fds returns the sockets for epoll: IPv4 first, then IPv6 if present.
func (b *Bind) Fds() []int { return b.fds }

// SetMark sets SO_MARK on every socket (0 clears it), so that policy
// routing can keep tunnel traffic out of the tunnel.
func (b *Bind) SetMark(mark uint32) error {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	if b.closed {
		return ErrClosed
	}
	for _, fd := range b.fds {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			return fmt.Errorf("conn: SO_MARK: %w", err)
		}
	}
	return nil
}

// Close closes both sockets. It is safe to call more than once.
func (b *Bind) Close() error {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.fd4.Store(-1)
	b.fd6.Store(-1)
	var errs []error
	for _, fd := range b.fds {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
