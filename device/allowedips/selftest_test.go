package allowedips

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
)

// The cases in this file restate the kernel's allowedips self-test
// (drivers/net/wireguard/selftest/allowedips.c) as data; peers a..h are the
// runes 'a'..'h'.

func ip4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

func ip6(a, b, c, d uint32) netip.Addr {
	var x [16]byte
	binary.BigEndian.PutUint32(x[0:], a)
	binary.BigEndian.PutUint32(x[4:], b)
	binary.BigEndian.PutUint32(x[8:], c)
	binary.BigEndian.PutUint32(x[12:], d)
	return netip.AddrFrom16(x)
}

type kernelInsert struct {
	peer rune
	addr netip.Addr
	bits int
}

var kernelInserts = []kernelInsert{
	{'a', ip4(192, 168, 4, 0), 24},
	{'b', ip4(192, 168, 4, 4), 32},
	{'c', ip4(192, 168, 0, 0), 16},
	{'d', ip4(192, 95, 5, 64), 27},
	{'c', ip4(192, 95, 5, 65), 27}, // replaces previous entry, host bits masked
	{'d', ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128},
	{'c', ip6(0x26075300, 0x60006b00, 0, 0), 64},
	{'e', ip4(0, 0, 0, 0), 0},
	{'e', ip6(0, 0, 0, 0), 0},
	{'f', ip6(0, 0, 0, 0), 0}, // replaces previous entry
	{'g', ip6(0x24046800, 0, 0, 0), 32},
	{'h', ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 64}, // host bits masked
	{'a', ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 128},
	{'c', ip6(0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128},
	{'b', ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98},
	{'g', ip4(64, 15, 112, 0), 20},
	{'h', ip4(64, 15, 123, 211), 25}, // host bits masked
	{'a', ip4(10, 0, 0, 0), 25},
	{'b', ip4(10, 0, 0, 128), 25},
	{'a', ip4(10, 1, 0, 0), 30},
	{'b', ip4(10, 1, 0, 4), 30},
	{'c', ip4(10, 1, 0, 8), 29},
	{'d', ip4(10, 1, 0, 16), 29},
}

var kernelLookups = []struct {
	peer rune
	addr netip.Addr
}{
	{'a', ip4(192, 168, 4, 20)},
	{'a', ip4(192, 168, 4, 0)},
	{'b', ip4(192, 168, 4, 4)},
	{'c', ip4(192, 168, 200, 182)},
	{'c', ip4(192, 95, 5, 68)},
	{'e', ip4(192, 95, 5, 96)},
	{'d', ip6(0x26075300, 0x60006b00, 0, 0xc05f0543)},
	{'c', ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee)},
	{'f', ip6(0x26075300, 0x60006b01, 0, 0)},
	{'g', ip6(0x24046800, 0x40040806, 0, 0x1006)},
	{'g', ip6(0x24046800, 0x40040806, 0x1234, 0x5678)},
	{'f', ip6(0x240467ff, 0x40040806, 0x1234, 0x5678)},
	{'f', ip6(0x24046801, 0x40040806, 0x1234, 0x5678)},
	{'h', ip6(0x24046800, 0x40040800, 0x1234, 0x5678)},
	{'h', ip6(0x24046800, 0x40040800, 0, 0)},
	{'h', ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010)},
	{'a', ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef)},
	{'g', ip4(64, 15, 116, 26)},
	{'g', ip4(64, 15, 127, 3)},
	{'g', ip4(64, 15, 123, 1)},
	{'h', ip4(64, 15, 123, 128)},
	{'h', ip4(64, 15, 123, 129)},
	{'a', ip4(10, 0, 0, 52)},
	{'b', ip4(10, 0, 0, 220)},
	{'a', ip4(10, 1, 0, 2)},
	{'b', ip4(10, 1, 0, 6)},
	{'c', ip4(10, 1, 0, 10)},
	{'d', ip4(10, 1, 0, 20)},
}

func mustInsert[T comparable](t *testing.T, tab *Table[T], a netip.Addr, bits int, v T) {
	t.Helper()
	if err := tab.Insert(netip.PrefixFrom(a, bits), v); err != nil {
		t.Fatalf("Insert(%v/%d): %v", a, bits, err)
	}
}

func TestKernelSelftestLookups(t *testing.T) {
	var tab Table[rune]
	for _, in := range kernelInserts {
		mustInsert(t, &tab, in.addr, in.bits, in.peer)
	}
	if err := tab.check(); err != nil {
		t.Fatal(err)
	}
	for i, c := range kernelLookups {
		if got, ok := tab.Lookup(c.addr); !ok || got != c.peer {
			t.Errorf("case %d: Lookup(%v) = %q, %v; want %q", i+1, c.addr, got, ok, c.peer)
		}
	}
}

func TestKernelSelftestRemoveByPeer(t *testing.T) {
	var tab Table[rune]
	for _, in := range kernelInserts {
		mustInsert(t, &tab, in.addr, in.bits, in.peer)
	}
	firsts := []byte{1, 64, 128, 192, 255}
	for _, b := range firsts {
		mustInsert(t, &tab, ip4(b, 0, 0, 0), 32, 'a')
	}
	tab.RemoveAll('a')
	for _, b := range firsts {
		if got, ok := tab.Lookup(ip4(b, 0, 0, 0)); ok && got == 'a' {
			t.Errorf("Lookup(%d.0.0.0) still finds a", b)
		}
	}
	if err := tab.check(); err != nil {
		t.Fatal(err)
	}

	var t2 Table[rune]
	mustInsert(t, &t2, ip4(192, 168, 0, 0), 16, 'a')
	mustInsert(t, &t2, ip4(192, 168, 0, 0), 24, 'a')
	t2.RemoveAll('a')
	if got, ok := t2.Lookup(ip4(192, 168, 0, 1)); ok && got == 'a' {
		t.Errorf("Lookup(192.168.0.1) still finds a")
	}
	if t2.Len() != 0 {
		t.Errorf("Len = %d after RemoveAll, want 0", t2.Len())
	}
}

// TestKernelSelftestDeepV6 inserts the 128 /128s that each differ from
// all-ones in one bit: the deepest tries a v6 table can grow.
func TestKernelSelftestDeepV6(t *testing.T) {
	var tab Table[rune]
	for i := range 128 {
		var b [16]byte
		for j := range b {
			b[j] = 0xff
		}
		b[i/8] &^= 0x80 >> (i % 8)
		mustInsert(t, &tab, netip.AddrFrom16(b), 128, 'a')
	}
	if err := tab.check(); err != nil {
		t.Fatal(err)
	}
	if n := tab.RemoveAll('a'); n != 128 {
		t.Fatalf("RemoveAll = %d, want 128", n)
	}
	if err := tab.check(); err != nil {
		t.Fatal(err)
	}
}

func TestKernelSelftestReadNodes(t *testing.T) {
	var tab Table[rune]
	mustInsert(t, &tab, ip4(192, 95, 5, 93), 27, 'a')
	mustInsert(t, &tab, ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128, 'a')
	mustInsert(t, &tab, ip4(10, 1, 0, 20), 29, 'a')
	mustInsert(t, &tab, ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 83, 'a')
	mustInsert(t, &tab, ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 21, 'a')
	want := []netip.Prefix{
		netip.PrefixFrom(ip4(192, 95, 5, 64), 27),
		netip.PrefixFrom(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128),
		netip.PrefixFrom(ip4(10, 1, 0, 16), 29),
		netip.PrefixFrom(ip6(0x26075300, 0x6d8a6bf8, 0xdab1e000, 0), 83),
		netip.PrefixFrom(ip6(0x26075000, 0, 0, 0), 21),
	}
	if got := slices.Collect(tab.Prefixes('a')); !slices.Equal(got, want) {
		t.Fatalf("Prefixes = %v\nwant %v", got, want)
	}
	if n := tab.Count('a'); n != 5 {
		t.Fatalf("Count = %d, want 5", n)
	}
}
