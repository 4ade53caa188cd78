package conn

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr mirrors the kernel's struct mmsghdr { struct msghdr msg_hdr;
// unsigned int msg_len; }. unix.Msghdr already has the kernel's msghdr
// layout for each GOARCH (it is generated from the C headers). Go lays out
// this struct exactly as C does: msg_len follows msg_hdr at offset
// sizeof(msghdr), and the total size is rounded up to the struct's
// alignment (that of the pointers in Msghdr), giving 64 bytes on 64-bit and
// 32 on 32-bit, which is the array stride the kernel uses for the vector.
// TestMmsghdrLayout checks these numbers.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// x/sys/unix does not wrap recvmmsg(2) and sendmmsg(2), so we call them
// directly.
//
// Why the unsafe use is safe: hdrs points at the first element of an array
// inside a heap-allocated batch owned by the Bind; the pointers stored in it
// (Name, Iov, Control, and Iov[i].Base) all point into Go memory that is
// also reachable from the Bind or from the caller's Message slice for the
// whole call, so the GC keeps it alive, and Go's heap does not move objects.
// The uintptr conversion happens in the call expression of Syscall6, which
// the unsafe.Pointer rules (case 4) allow: the referenced object is kept
// alive and in place until the call returns. vlen never exceeds the array.

func recvmmsg(fd int, hdrs *mmsghdr, vlen int, flags int) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(hdrs)),
		uintptr(vlen), uintptr(flags), 0, 0)
	return int(n), e
}

func sendmmsg(fd int, hdrs *mmsghdr, vlen int, flags int) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(hdrs)),
		uintptr(vlen), uintptr(flags), 0, 0)
	return int(n), e
}

// sendmsg sends one datagram; the same argument applies to hdr.
func sendmsg(fd int, hdr *unix.Msghdr, flags int) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(hdr)), uintptr(flags))
	return e
}
