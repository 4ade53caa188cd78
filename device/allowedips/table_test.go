package allowedips

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// opGen draws prefixes and addresses from a small set of bases so that
// random prefixes nest, collide and share long paths, which is where a
// trie goes wrong.
type opGen struct {
	r     *rand.Rand
	bases []netip.Addr
}

func newOpGen(seed uint64) *opGen {
	g := &opGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for range 8 {
		g.bases = append(g.bases, g.randAddr(false), g.randAddr(true))
	}
	return g
}

func (g *opGen) randAddr(v6 bool) netip.Addr {
	if !v6 {
		return netip.AddrFrom4([4]byte{byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32())})
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return netip.AddrFrom16(b)
}

// near returns an address sharing a random number of leading bits with a
// base address.
func (g *opGen) near() netip.Addr {
	base := g.bases[g.r.IntN(len(g.bases))]
	keep := g.r.IntN(base.BitLen() + 1)
	k, other := keyOf(base).masked(keep), keyOf(g.randAddr(base.Is6()))
	ones := key{^uint64(0), ^uint64(0)}.masked(keep)
	k.hi |= other.hi &^ ones.hi
	k.lo |= other.lo &^ ones.lo
	return k.addr(base.Is6())
}

func (g *opGen) prefix() netip.Prefix {
	a := g.near()
	bits := g.r.IntN(a.BitLen() + 1)
	if g.r.IntN(3) == 0 {
		bits = a.BitLen()
	}
	return netip.PrefixFrom(a, bits)
}

func (g *opGen) addr() netip.Addr {
	if g.r.IntN(8) == 0 {
		return g.randAddr(g.r.IntN(2) == 0)
	}
	return g.near()
}

func compareAll(t testing.TB, tab *Table[int], ref *refTable, g *opGen, lookups, values int) {
	t.Helper()
	for range lookups {
		a := g.addr()
		got, ok := tab.Lookup(a)
		want, wok := ref.lookup(a)
		if got != want || ok != wok {
			t.Fatalf("Lookup(%v) = %d, %v; reference says %d, %v", a, got, ok, want, wok)
		}
	}
	for v := range values {
		got := slices.Collect(tab.Prefixes(v))
		want := ref.prefixes(v)
		if !slices.Equal(got, want) {
			t.Fatalf("Prefixes(%d) = %v\nreference %v", v, got, want)
		}
		mark := netip.MustParsePrefix("198.18.0.0/15")
		if got := tab.AppendPrefixes([]netip.Prefix{mark}, v); got[0] != mark || !slices.Equal(got[1:], want) {
			t.Fatalf("AppendPrefixes(%d) = %v\nreference %v after %v", v, got, want, mark)
		}
	}
	if tab.Len() != len(ref.rows) {
		t.Fatalf("Len = %d, reference %d", tab.Len(), len(ref.rows))
	}
	if err := tab.check(); err != nil {
		t.Fatal(err)
	}
}

func TestRandomAgainstReference(t *testing.T) {
	const values = 16
	rounds, ops := 4, 3000
	if testing.Short() {
		rounds, ops = 2, 1000
	}
	for seed := range uint64(rounds) {
		g := newOpGen(seed)
		var tab Table[int]
		ref := &refTable{}
		for i := range ops {
			p, v := g.prefix(), g.r.IntN(values)
			switch n := g.r.IntN(20); {
			case n < 12:
				if err := tab.Insert(p, v); err != nil {
					t.Fatal(err)
				}
				ref.insert(p, v)
			case n < 19:
				if len(ref.rows) > 0 && n < 17 {
					row := ref.rows[g.r.IntN(len(ref.rows))]
					p, v = row.p, row.v
				}
				if got, want := tab.Remove(p, v), ref.remove(p, v); got != want {
					t.Fatalf("Remove(%v, %d) = %v, want %v", p, v, got, want)
				}
			default:
				if got, want := tab.RemoveAll(v), ref.removeAll(v); got != want {
					t.Fatalf("RemoveAll(%d) = %d, want %d", v, got, want)
				}
			}
			if i%500 == 499 {
				compareAll(t, &tab, ref, g, 2000, values)
			}
		}
		compareAll(t, &tab, ref, g, 5000, values)
	}
}

func TestInsertInvalid(t *testing.T) {
	var tab Table[int]
	if err := tab.Insert(netip.Prefix{}, 1); !errors.Is(err, ErrInvalidPrefix) {
		t.Fatalf("Insert(zero) = %v, want ErrInvalidPrefix", err)
	}
	if tab.Remove(netip.Prefix{}, 1) {
		t.Fatal("Remove(zero) reported success")
	}
	if _, ok := tab.Lookup(netip.Addr{}); ok {
		t.Fatal("Lookup(zero) found something")
	}
	if _, ok := tab.Lookup(netip.MustParseAddr("198.18.0.1")); ok {
		t.Fatal("Lookup in empty table found something")
	}
}

// TestMappedAddressIsIPv6: an IPv4-mapped address is matched as IPv6, as
// the kernel and wireguard-go match IPv6 packets, never by an IPv4 prefix;
// an IPv4-mapped prefix matches it.
func TestMappedAddressIsIPv6(t *testing.T) {
	var tab Table[int]
	mustInsert(t, &tab, netip.MustParseAddr("198.18.0.0"), 15, 4)
	mapped := netip.MustParseAddr("::ffff:198.18.3.4")
	if v, ok := tab.Lookup(mapped); ok {
		t.Fatalf("Lookup(mapped) = %d with only IPv4 prefixes; want no match", v)
	}
	mustInsert(t, &tab, netip.MustParseAddr("::"), 0, 6)
	if v, ok := tab.Lookup(mapped); !ok || v != 6 {
		t.Fatalf("Lookup(mapped) = %d, %v; want 6 (::/0)", v, ok)
	}
	mustInsert(t, &tab, netip.MustParseAddr("::ffff:198.18.0.0"), 112, 46)
	if v, ok := tab.Lookup(mapped); !ok || v != 46 {
		t.Fatalf("Lookup(mapped) = %d, %v; want 46 (::ffff:198.18.0.0/112)", v, ok)
	}
	if v, ok := tab.Lookup(netip.MustParseAddr("198.18.3.4")); !ok || v != 4 {
		t.Fatalf("Lookup(198.18.3.4) = %d, %v; want 4: a mapped prefix is not IPv4", v, ok)
	}
	if got := slices.Collect(tab.Prefixes(46)); len(got) != 1 || got[0].String() != "::ffff:198.18.0.0/112" {
		t.Fatalf("Prefixes(46) = %v", got)
	}
	if v, ok := tab.Lookup(netip.MustParseAddr("fe80::1%eth0")); !ok || v != 6 {
		t.Fatalf("Lookup(zoned) = %d, %v; want 6", v, ok)
	}
}

func TestMoveAndOwnership(t *testing.T) {
	var tab Table[int]
	p := netip.MustParsePrefix("198.18.5.7/24")
	mustInsert(t, &tab, p.Addr(), p.Bits(), 1)
	mustInsert(t, &tab, netip.MustParseAddr("fd00::1"), 128, 1)
	mustInsert(t, &tab, p.Addr(), p.Bits(), 2)
	if tab.Remove(p, 1) {
		t.Fatal("Remove by the old owner succeeded after a move")
	}
	if got := slices.Collect(tab.Prefixes(1)); len(got) != 1 || got[0] != netip.MustParsePrefix("fd00::1/128") {
		t.Fatalf("Prefixes(1) = %v", got)
	}
	if got := slices.Collect(tab.Prefixes(2)); len(got) != 1 || got[0] != p.Masked() {
		t.Fatalf("Prefixes(2) = %v", got)
	}
	if !tab.Remove(p, 2) || tab.Len() != 1 {
		t.Fatalf("Remove by the new owner failed or Len = %d", tab.Len())
	}
}

func TestPrefixesIterationMayWrite(t *testing.T) {
	var tab Table[int]
	for i := range 10 {
		mustInsert(t, &tab, netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24, 1)
	}
	n := 0
	for p := range tab.Prefixes(1) {
		tab.Remove(p, 1)
		n++
		if n == 5 {
			break
		}
	}
	if tab.Len() != 5 {
		t.Fatalf("Len = %d, want 5", tab.Len())
	}
}

func TestLookupAllocs(t *testing.T) {
	var tab Table[*int]
	v := new(int)
	g := newOpGen(1)
	for range 1000 {
		if err := tab.Insert(g.prefix(), v); err != nil {
			t.Fatal(err)
		}
	}
	a4, a6 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("fd00::1")
	if n := testing.AllocsPerRun(100, func() {
		tab.Lookup(a4)
		tab.Lookup(a6)
		tab.Lookup(g.bases[0])
	}); n != 0 {
		t.Fatalf("Lookup allocates %v times per call", n)
	}
}

// TestRandomIsMeaningful guards the generator: most lookups must hit and
// many must hit something longer than a default route.
func TestRandomIsMeaningful(t *testing.T) {
	g := newOpGen(7)
	ref := &refTable{}
	for range 500 {
		ref.insert(g.prefix(), g.r.IntN(4))
	}
	hits := 0
	for range 1000 {
		if _, ok := ref.lookup(g.addr()); ok {
			hits++
		}
	}
	if hits < 500 {
		t.Fatalf("only %d of 1000 random lookups hit", hits)
	}
}

// TestAppendPrefixesAllocs guards what the UAPI get relies on: listing a
// value's prefixes into a buffer with room allocates nothing.
func TestAppendPrefixesAllocs(t *testing.T) {
	var tab Table[int]
	g := newOpGen(2)
	for range 100 {
		if err := tab.Insert(g.prefix(), 1); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]netip.Prefix, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		buf = tab.AppendPrefixes(buf[:0], 1)
		buf = tab.AppendPrefixes(buf[:0], 2)
	}); n != 0 {
		t.Fatalf("AppendPrefixes allocates %v times per call", n)
	}
}
