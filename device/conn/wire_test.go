package conn

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMmsghdrLayout(t *testing.T) {
	// struct mmsghdr is msghdr followed by an unsigned int, padded to the
	// alignment of msghdr (that of a pointer).
	ptr := unsafe.Sizeof(uintptr(0))
	want := (unsafe.Sizeof(unix.Msghdr{}) + 4 + ptr - 1) &^ (ptr - 1)
	if got := unsafe.Sizeof(mmsghdr{}); got != want {
		t.Fatalf("sizeof(mmsghdr) = %d, want %d", got, want)
	}
	if got := unsafe.Offsetof(mmsghdr{}.len); got != unsafe.Sizeof(unix.Msghdr{}) {
		t.Fatalf("offsetof(msg_len) = %d", got)
	}
	if ptr == 8 && unsafe.Sizeof(mmsghdr{}) != 64 {
		t.Fatalf("64-bit mmsghdr is %d bytes, kernel uses 64", unsafe.Sizeof(mmsghdr{}))
	}
	if unix.CmsgSpace(sizeofPktinfo6)+unix.CmsgSpace(4) > ctrlSize {
		t.Fatalf("ctrlSize %d too small for pktinfo6 + one int cmsg", ctrlSize)
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:51820", "[::1]:1", "[fd00::1]:65535", "198.18.0.1:9"} {
		ap := netip.MustParseAddrPort(s)
		var b [sizeofSockaddr6]byte
		n := encodeSockaddr(b[:], ap, 0)
		got, ok := decodeSockaddr(b[:n])
		if !ok || got != ap {
			t.Errorf("%s: round trip gave %v %v", s, got, ok)
		}
	}
	// A v4-mapped source from a dual-stack socket comes back unmapped.
	var b [sizeofSockaddr6]byte
	encodeSockaddr(b[:], netip.MustParseAddrPort("[::ffff:198.18.0.7]:5"), 0)
	if got, _ := decodeSockaddr(b[:]); got != netip.MustParseAddrPort("198.18.0.7:5") {
		t.Errorf("mapped source decoded as %v", got)
	}
	if encodeSockaddr(b[:], netip.AddrPort{}, 0) != 0 {
		t.Error("invalid AddrPort encoded")
	}
}

func TestControlRoundTrip(t *testing.T) {
	cases := []struct{ dst, src string }{
		{"198.18.0.2", "198.18.0.1"},
		{"fd00::2", "fd00::1"},
		{"fe80::2", "fe80::1"},
	}
	for _, c := range cases {
		var b [ctrlSize]byte
		n := encodeSource(b[:], netip.MustParseAddr(c.dst), netip.MustParseAddr(c.src), 7)
		src, idx, _ := parseControl(b[:n])
		if src != netip.MustParseAddr(c.src) {
			t.Errorf("%s: src %v", c.src, src)
		}
		if netip.MustParseAddr(c.dst).Is6() && idx != 7 {
			t.Errorf("%s: ifindex %d", c.src, idx)
		}
	}
	var b [ctrlSize]byte
	if encodeSource(b[:], netip.MustParseAddr("fd00::2"), netip.MustParseAddr("198.18.0.1"), 0) != 0 {
		t.Error("mixed families produced a cmsg")
	}
}

func FuzzParseControl(f *testing.F) {
	var b [ctrlSize]byte
	n := encodeSource(b[:], netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1"), 3)
	f.Add(b[:n])
	n = encodeSource(b[:], netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1"), 0)
	f.Add(append(b[:n:n], b[:n]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		src, _, gro := parseControl(data)
		if gro < 0 {
			t.Fatalf("negative GRO size %d", gro)
		}
		if src.IsValid() && src.Is4In6() {
			t.Fatalf("mapped source %v", src)
		}
	})
}

func FuzzDecodeSockaddr(f *testing.F) {
	var b [sizeofSockaddr6]byte
	encodeSockaddr(b[:], netip.MustParseAddrPort("[fd00::1]:51820"), 0)
	f.Add(b[:])
	encodeSockaddr(b[:], netip.MustParseAddrPort("198.18.0.1:51820"), 0)
	f.Add(b[:sizeofSockaddr4])
	f.Fuzz(func(t *testing.T, data []byte) {
		ap, ok := decodeSockaddr(data)
		if !ok {
			return
		}
		if ap.Addr().Is4In6() {
			t.Fatalf("mapped %v", ap)
		}
		// What decodes re-encodes to the same endpoint.
		var out [sizeofSockaddr6]byte
		n := encodeSockaddr(out[:], ap, 0)
		if back, ok := decodeSockaddr(out[:n]); !ok || back != ap {
			t.Fatalf("%v re-decoded as %v", ap, back)
		}
	})
}
