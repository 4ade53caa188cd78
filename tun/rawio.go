package tun

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The TUN fd is non-blocking, so a read or write returns as soon as the
// kernel has done its work. These wrappers issue them as raw system calls,
// without the Go scheduler's entersyscall/exitsyscall bookkeeping. That
// bookkeeping is not free here: entering a syscall while the runtime's
// monitor thread sleeps wakes it (a futex wake, an inter-processor
// interrupt on a VM), and a write that runs the kernel's receive path for
// a 64 KiB super-packet can outlast the monitor's 20 µs retake period,
// after which it hands the processor to another thread. A non-blocking
// call never needs either.
//
// Why the unsafe use is safe: the pointers point into Go slices that the
// caller keeps alive for the whole call, and the uintptr conversion happens
// in the call expression (unsafe.Pointer rule 4).

func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2) (trap) of p on fd.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// rawReadExtra is readv(2) into p and one byte more: a packet longer than
// p returns len(p)+1, which tells a packet cut to p from one that fills it
// exactly.
func rawReadExtra(fd int, p []byte) (int, error) {
	var extra [1]byte
	var v [2]unix.Iovec
	n := 0
	if len(p) > 0 {
		v[0].Base = &p[0]
		v[0].SetLen(len(p))
		n++
	}
	v[n].Base = &extra[0]
	v[n].SetLen(1)
	r, _, e := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(n+1))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// rawWritev writes bufs with one writev(2), building the iovec array in
// *vec (reused; grown only if bufs is longer than any before).
func rawWritev(fd int, bufs [][]byte, vec *[]unix.Iovec) (int, error) {
	v := (*vec)[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		var io unix.Iovec
		io.Base = &b[0]
		io.SetLen(len(b))
		v = append(v, io)
	}
	*vec = v
	if len(v) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
	clear(v) // drop the pointers into the caller's buffers
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
