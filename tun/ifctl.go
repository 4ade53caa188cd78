package tun

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// This file holds the ioctls that configure the link. Interface ioctls
// (SIOCGIFMTU, SIOCSIFFLAGS, ...) look the name up in the network namespace
// of the socket they are issued on, so after `ip link set IFNAME netns
// OTHER` a socket from our own namespace would miss the link, or worse find
// another link of the same name. We therefore ask the TUN fd itself for its
// current name (TUNGETIFF) and namespace (TUNGETDEVNETNS, Linux 5.2+) and
// issue the ioctl on a socket created in that namespace.

// tunName returns the link's current name from the TUN fd. It follows
// renames and namespace moves; EBADFD means the link was deleted.
func tunName(fd int) (string, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return "", mapErrno("TUNGETIFF", err)
	}
	return ifr.Name(), nil
}

// devNetns returns a new fd for the network namespace the link lives in,
// or -1 when the kernel is too old to tell (then the link is assumed to be
// in ours).
func devNetns(fd int) (int, error) {
	ns, err := unix.IoctlRetInt(fd, unix.TUNGETDEVNETNS)
	switch {
	case err == nil:
		return ns, nil
	case errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EINVAL):
		return -1, nil
	}
	return -1, mapErrno("TUNGETDEVNETNS", err)
}

// sameNetns reports whether the namespace fd ns is the calling thread's,
// where a socket it opens next lives. (/proc/self would name the main
// thread's, which a test may have moved elsewhere.) Goroutines that are not
// locked to a thread only run on threads in the process's namespace.
func sameNetns(ns int) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(ns, &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// ctlSocket returns a datagram socket in the namespace the link of tunFd is
// in, for interface ioctls. The caller closes it.
func ctlSocket(tunFd int) (int, error) {
	ns, err := devNetns(tunFd)
	if err != nil {
		return -1, err
	}
	if ns < 0 {
		return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	defer unix.Close(ns)
	if same, err := sameNetns(ns); err == nil && same {
		return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	return socketInNetns(ns)
}

// socketInNetns creates an AF_INET datagram socket inside namespace ns. A
// socket keeps the namespace it was created in, so only the socket(2) call
// needs the switch. It runs on a fresh goroutine locked to its thread; if
// switching back fails, the goroutine exits still locked, and the runtime
// then discards the thread instead of reusing it in the wrong namespace.
func socketInNetns(ns int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("tun: open own netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("tun: setns: %w", err)}
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// ifIoctl issues an interface ioctl for the link behind tunFd, wherever it
// lives now. fill prepares the request, done reads the answer.
func ifIoctl(tunFd int, req uint, fill func(*unix.Ifreq), done func(*unix.Ifreq)) error {
	name, err := tunName(tunFd)
	if err != nil {
		return err
	}
	sock, err := ctlSocket(tunFd)
	if err != nil {
		return fmt.Errorf("tun: control socket: %w", err)
	}
	defer unix.Close(sock)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if fill != nil {
		fill(ifr)
	}
	if err := unix.IoctlIfreq(sock, req, ifr); err != nil {
		return fmt.Errorf("tun: ioctl %#x on %s: %w", req, name, err)
	}
	if done != nil {
		done(ifr)
	}
	return nil
}

func getMTU(tunFd int) (int, error) {
	var mtu int
	err := ifIoctl(tunFd, unix.SIOCGIFMTU, nil, func(ifr *unix.Ifreq) { mtu = int(int32(ifr.Uint32())) })
	return mtu, err
}

func setMTU(tunFd, mtu int) error {
	return ifIoctl(tunFd, unix.SIOCSIFMTU, func(ifr *unix.Ifreq) { ifr.SetUint32(uint32(mtu)) }, nil)
}

func ifIndex(tunFd int) (int, error) {
	var idx int
	err := ifIoctl(tunFd, unix.SIOCGIFINDEX, nil, func(ifr *unix.Ifreq) { idx = int(int32(ifr.Uint32())) })
	return idx, err
}

// setUp sets IFF_UP, keeping the other flags.
func setUp(tunFd int) error {
	var flags uint16
	if err := ifIoctl(tunFd, unix.SIOCGIFFLAGS, nil, func(ifr *unix.Ifreq) { flags = ifr.Uint16() }); err != nil {
		return err
	}
	return ifIoctl(tunFd, unix.SIOCSIFFLAGS, func(ifr *unix.Ifreq) { ifr.SetUint16(flags | unix.IFF_UP) }, nil)
}
