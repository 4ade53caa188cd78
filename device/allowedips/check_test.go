package allowedips

import (
	"fmt"
	"net/netip"
)

// checkTrie verifies the structural invariants that insert and remove keep:
// slices match their bitsets, every entry sits where its prefix leads, leaves
// are at least one stride long, and no node below the root could have been
// collapsed into a leaf. It returns the number of entries reachable.
func checkTrie[T comparable](n *node[T], depth int, path key, v6 bool) (int, error) {
	if n == nil {
		return 0, nil
	}
	if popcount(&n.prefixBits) != len(n.prefixes) || popcount(&n.leafBits) != len(n.leaves) ||
		popcount(&n.childBits) != len(n.children) {
		return 0, fmt.Errorf("depth %d: bitset and slice lengths disagree", depth)
	}
	if depth > 0 && (n.size() == 0 || n.sole() != nil) {
		return 0, fmt.Errorf("depth %d: node should have collapsed", depth)
	}
	total := 0
	for i := range 256 {
		o := uint8(i)
		if n.prefixBits.test(o) && o != 0 {
			e := n.prefixes[n.prefixBits.rank(o)].Load()
			if err := checkEntry(e, depth, path, v6); err != nil {
				return 0, err
			}
			if prefixIndex(e.key.octet(depth), int(e.bits)-stride*depth) != o {
				return 0, fmt.Errorf("depth %d: prefix %v at wrong index %d", depth, e.prefix(), o)
			}
			total++
		}
		sub := setOctet(path, depth, o)
		if n.leafBits.test(o) {
			e := n.leaves[n.leafBits.rank(o)].Load()
			if int(e.bits) < stride*depth+stride || !e.key.hasPrefix(sub, stride*depth+stride) {
				return 0, fmt.Errorf("depth %d: leaf %v misplaced at octet %d", depth, e.prefix(), o)
			}
			if err := checkEntry(e, depth, path, v6); err != nil {
				return 0, err
			}
			total++
		}
		if n.childBits.test(o) {
			if n.leafBits.test(o) {
				return 0, fmt.Errorf("depth %d: octet %d is both leaf and child", depth, o)
			}
			c, err := checkTrie(n.children[n.childBits.rank(o)].Load(), depth+1, sub, v6)
			if err != nil {
				return 0, err
			}
			total += c
		}
	}
	return total, nil
}

func checkEntry[T comparable](e *entry[T], depth int, path key, v6 bool) error {
	if e.v6 != v6 || !e.key.hasPrefix(path, stride*depth) || e.key.masked(int(e.bits)) != e.key {
		return fmt.Errorf("depth %d: entry %v does not belong under this path", depth, e.prefix())
	}
	if !netip.PrefixFrom(e.key.addr(v6), int(e.bits)).IsValid() {
		return fmt.Errorf("entry %v invalid", e.prefix())
	}
	return nil
}

func popcount(b *bitset256) int {
	return b.rank(255) + map[bool]int{true: 1}[b.test(255)]
}

func setOctet(k key, depth int, o uint8) key {
	if depth < 8 {
		shift := 56 - 8*depth
		k.hi = k.hi&^(0xff<<shift) | uint64(o)<<shift
		return k
	}
	shift := 56 - 8*(depth-8)
	k.lo = k.lo&^(0xff<<shift) | uint64(o)<<shift
	return k
}

// check runs checkTrie on both roots and compares the entry count with Len.
func (t *Table[T]) check() error {
	n4, err := checkTrie(t.root4.Load(), 0, key{}, false)
	if err != nil {
		return fmt.Errorf("ipv4: %w", err)
	}
	n6, err := checkTrie(t.root6.Load(), 0, key{}, true)
	if err != nil {
		return fmt.Errorf("ipv6: %w", err)
	}
	if n4+n6 != t.Len() {
		return fmt.Errorf("trie holds %d entries, Len says %d", n4+n6, t.Len())
	}
	return nil
}
