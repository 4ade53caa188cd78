package allowedips

import (
	"net/netip"
	"slices"
	"testing"
)

// FuzzOps decodes the input as a sequence of operations on a table and on
// the slow reference and fails on the first disagreement. Each operation is
// 6 bytes: opcode, value, prefix length, and three address bytes that are
// spread over a small address space so that prefixes nest and collide.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 24, 10, 0, 0, 0, 2, 32, 10, 0, 5, 3, 1, 24, 10, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 1, 2, 128, 0xfd, 1, 2, 4, 1, 0, 0, 0, 0})
	f.Add([]byte{1, 3, 130, 0xff, 0xff, 0xff, 1, 3, 127, 0xff, 0xff, 0xfe, 4, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var tab Table[int]
		ref := &refTable{}
		for len(data) >= 6 {
			op, v, p, a := data[0]%6, int(data[1]%4), fuzzPrefix(data[2:6]), fuzzAddr(data[2:6])
			data = data[6:]
			switch op {
			case 0, 1:
				if err := tab.Insert(p, v); err != nil {
					t.Fatal(err)
				}
				ref.insert(p, v)
			case 2:
				if got, want := tab.Remove(p, v), ref.remove(p, v); got != want {
					t.Fatalf("Remove(%v, %d) = %v, want %v", p, v, got, want)
				}
			case 3:
				if got, want := tab.RemoveAll(v), ref.removeAll(v); got != want {
					t.Fatalf("RemoveAll(%d) = %d, want %d", v, got, want)
				}
			default:
				got, ok := tab.Lookup(a)
				if want, wok := ref.lookup(a); got != want || ok != wok {
					t.Fatalf("Lookup(%v) = %d, %v; want %d, %v", a, got, ok, want, wok)
				}
			}
		}
		for v := range 4 {
			if got, want := slices.Collect(tab.Prefixes(v)), ref.prefixes(v); !slices.Equal(got, want) {
				t.Fatalf("Prefixes(%d) = %v, want %v", v, got, want)
			}
		}
		if err := tab.check(); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzAddr builds an address from b[1:4]: IPv4 when b[0] < 128, else IPv6
// with the bytes placed at both ends so that deep and shallow paths occur.
func fuzzAddr(b []byte) netip.Addr {
	if b[0] < 128 {
		return netip.AddrFrom4([4]byte{b[1], b[2] & 0x0f, b[3] & 0xf0, b[3] & 0x0f})
	}
	var x [16]byte
	x[0], x[1], x[14], x[15] = b[1], b[2]&0x0f, b[3]&0xf0, b[3]&0x0f
	return netip.AddrFrom16(x)
}

// fuzzPrefix builds a prefix of the address from b with length from b[0].
func fuzzPrefix(b []byte) netip.Prefix {
	a := fuzzAddr(b)
	return netip.PrefixFrom(a, int(b[0]&0x7f)%(a.BitLen()+1))
}
