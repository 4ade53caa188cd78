package allowedips

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// The benchmarks compare Table with github.com/gaissmai/bart on the same
// prefixes and addresses. Run them with, for example:
//
//	go test -run '^$' -bench . -benchtime 1x ./device/allowedips        # all sizes
//	go test -run '^$' -bench . -short ./device/allowedips                # no 1M sizes
//
// Each dataset gives every prefix its own value, as a device with one /32
// per peer would, so our per-value lists and index are part of the cost.

type benchPeer struct{ id int }

type dataset struct {
	name   string
	pfxs   []netip.Prefix
	vals   []*benchPeer
	probes []netip.Addr
}

var benchSizes = []int{1_000, 100_000, 1_000_000}

type benchKind struct {
	name   string
	v6     bool
	minLen int // host-length prefixes when minLen is the full length
}

var benchKinds = []benchKind{
	{"v4/32", false, 32}, {"v4/mixed", false, 8}, {"v6/128", true, 128}, {"v6/mixed", true, 16},
}

func benchAddr(r *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return netip.AddrFrom16(b)
}

// makeDataset draws n distinct random prefixes and 4096 probe addresses,
// three quarters inside a stored prefix and one quarter anywhere.
func makeDataset(k benchKind, n int) *dataset {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	d := &dataset{name: fmt.Sprintf("%s/%d", k.name, n)}
	seen := make(map[netip.Prefix]bool, n)
	for len(d.pfxs) < n {
		a := benchAddr(r, k.v6)
		bits := k.minLen + r.IntN(a.BitLen()-k.minLen+1)
		p := netip.PrefixFrom(a, bits).Masked()
		if !seen[p] {
			seen[p] = true
			d.pfxs = append(d.pfxs, p)
			d.vals = append(d.vals, &benchPeer{id: len(d.vals)})
		}
	}
	for i := range 4096 {
		if i%4 == 3 {
			d.probes = append(d.probes, benchAddr(r, k.v6))
			continue
		}
		p := d.pfxs[r.IntN(n)]
		host := keyOf(benchAddr(r, k.v6))
		ones := key{^uint64(0), ^uint64(0)}.masked(p.Bits())
		kk := keyOf(p.Addr())
		kk.hi |= host.hi &^ ones.hi
		kk.lo |= host.lo &^ ones.lo
		d.probes = append(d.probes, kk.addr(k.v6))
	}
	return d
}

func (d *dataset) ours() *Table[*benchPeer] {
	t := &Table[*benchPeer]{}
	for i, p := range d.pfxs {
		_ = t.Insert(p, d.vals[i])
	}
	return t
}

func (d *dataset) bart() *bart.Table[*benchPeer] {
	t := &bart.Table[*benchPeer]{}
	for i, p := range d.pfxs {
		t.Insert(p, d.vals[i])
	}
	return t
}

// forEachDataset runs fn for every kind and size, skipping 1M under -short.
func forEachDataset(b *testing.B, fn func(b *testing.B, d *dataset)) {
	for _, k := range benchKinds {
		for _, n := range benchSizes {
			if n > 100_000 && testing.Short() {
				continue
			}
			d := makeDataset(k, n)
			b.Run(d.name, func(b *testing.B) { fn(b, d) })
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	forEachDataset(b, func(b *testing.B, d *dataset) {
		ours, theirs := d.ours(), d.bart()
		runtime.GC() // keep the garbage of the builds out of the timed loops
		b.Run("impl=wgd", func(b *testing.B) {
			i := 0
			for b.Loop() {
				ours.Lookup(d.probes[i&4095])
				i++
			}
		})
		b.Run("impl=bart", func(b *testing.B) {
			i := 0
			for b.Loop() {
				theirs.Lookup(d.probes[i&4095])
				i++
			}
		})
	})
}

// heapOf returns the bytes of live heap that build leaves behind.
func heapOf(build func() any) (uint64, any) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - before.HeapAlloc, v
}

// BenchmarkInsert builds each table from empty once per iteration and
// reports the mean cost of one insert and the heap bytes per prefix.
func BenchmarkInsert(b *testing.B) {
	forEachDataset(b, func(b *testing.B, d *dataset) {
		for _, impl := range []string{"wgd", "bart"} {
			build := func() any { return d.ours() }
			if impl == "bart" {
				build = func() any { return d.bart() }
			}
			b.Run("impl="+impl, func(b *testing.B) {
				heap, keep := heapOf(build)
				runtime.KeepAlive(keep)
				keep = nil
				var total time.Duration
				for b.Loop() {
					start := time.Now()
					keep = build()
					total += time.Since(start)
				}
				runtime.KeepAlive(keep)
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*len(d.pfxs)), "ns/insert")
				b.ReportMetric(float64(heap)/float64(len(d.pfxs)), "B/prefix")
			})
		}
	})
}

// BenchmarkRemoveAll times removing one value that owns 1,000 random /32s
// (or /128s) from a table that also holds the dataset. bart has no notion
// of an owner, so its side deletes the 1,000 prefixes from a list the
// caller kept, which is what a device built on bart would have to do.
func BenchmarkRemoveAll(b *testing.B) {
	forEachDataset(b, func(b *testing.B, d *dataset) {
		r := rand.New(rand.NewPCG(7, 7))
		v6 := d.pfxs[0].Addr().Is6()
		own := make([]netip.Prefix, 1000)
		for i := range own {
			a := benchAddr(r, v6)
			own[i] = netip.PrefixFrom(a, a.BitLen())
		}
		victim := &benchPeer{id: -1}
		ours, theirs := d.ours(), d.bart()
		b.Run("impl=wgd", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				for _, p := range own {
					_ = ours.Insert(p, victim)
				}
				b.StartTimer()
				ours.RemoveAll(victim)
			}
		})
		b.Run("impl=bart", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				for _, p := range own {
					theirs.Insert(p, victim)
				}
				b.StartTimer()
				for _, p := range own {
					theirs.Delete(p)
				}
			}
		})
	})
}
