package allowedips

import (
	"math/bits"
	"sync/atomic"
)

// stride is the number of address bits one trie level consumes. Eight bits
// keep an IPv4 lookup to at most four node visits and an IPv6 one to sixteen.
const stride = 8

// bitset256 marks which of 256 positions of a node are occupied; the rank of
// a position (the number of occupied positions below it) is its index into
// the node's dense slot slice, so empty positions cost no memory.
type bitset256 [4]uint64

func (b *bitset256) test(i uint8) bool {
	return b[i>>6]&(1<<(i&63)) != 0
}

func (b *bitset256) set(i uint8) {
	b[i>>6] |= 1 << (i & 63)
}

func (b *bitset256) clear(i uint8) {
	b[i>>6] &^= 1 << (i & 63)
}

// rank returns the number of set bits below position i.
func (b *bitset256) rank(i uint8) int {
	w := int(i >> 6)
	n := bits.OnesCount64(b[w] & (1<<(i&63) - 1))
	for j := 0; j < w; j++ {
		n += bits.OnesCount64(b[j])
	}
	return n
}

// prefixIndex numbers the prefixes of length l (0..7) inside one stride the
// way a complete binary tree numbers its nodes: 1 is /0, 2..3 are /1, and
// 128..255 are /7. The ancestors of index i are i>>1, i>>2, ..., 1.
func prefixIndex(o byte, l int) uint8 {
	return uint8(1<<l | int(o)>>(stride-l))
}

// node is one level of the trie at a depth d, covering address bits
// 8d..8d+7 below the path that leads to it.
//
// Publication rule (what makes lock-free reads safe): the bitsets and the
// slice headers of a node never change once the node is reachable from a
// root. The only in-place writes to a reachable node are atomic stores into
// an existing slot, replacing a child with a child or an entry with an entry
// for the same position. Any change of shape builds a new node and publishes
// it with one atomic store into its parent's slot (or the table's root), so
// a reader sees either the old node or the new one, each self-consistent.
type node[T comparable] struct {
	// prefixBits marks the prefixes of length 8d+0..8d+7 held here, by
	// prefixIndex; prefixes holds them in index order.
	prefixBits bitset256
	// leafBits marks octets whose whole subtree is one entry of length
	// >= 8d+8 (path compression); leaves holds them in octet order.
	leafBits bitset256
	// childBits marks octets with a child node; children holds them.
	childBits bitset256

	prefixes []atomic.Pointer[entry[T]]
	leaves   []atomic.Pointer[entry[T]]
	children []atomic.Pointer[node[T]]
}

// longest returns the longest prefix held in n that covers octet o, or nil.
func (n *node[T]) longest(o byte) *entry[T] {
	for i := uint16(o) | 256; i > 1; {
		i >>= 1
		if n.prefixBits.test(uint8(i)) {
			return n.prefixes[n.prefixBits.rank(uint8(i))].Load()
		}
	}
	return nil
}

// size returns the number of prefixes, leaves and children held in n.
func (n *node[T]) size() int {
	return len(n.prefixes) + len(n.leaves) + len(n.children)
}

// sole returns the only entry of n when n holds exactly one entry and no
// children, so that the parent can keep that entry as a leaf instead.
func (n *node[T]) sole() *entry[T] {
	switch {
	case len(n.children) != 0 || len(n.prefixes)+len(n.leaves) != 1:
		return nil
	case len(n.prefixes) == 1:
		return n.prefixes[0].Load()
	}
	return n.leaves[0].Load()
}

// clone returns a shallow copy of n. The copy shares n's slot slices; the
// writer replaces whichever slice it changes, and sharing the others is
// safe because slots are only ever stored atomically.
func (n *node[T]) clone() *node[T] {
	c := &node[T]{prefixBits: n.prefixBits, leafBits: n.leafBits, childBits: n.childBits}
	c.prefixes, c.leaves, c.children = n.prefixes, n.leaves, n.children
	return c
}

// insertSlot returns a new slice holding s with v inserted at index i.
func insertSlot[X any](s []atomic.Pointer[X], i int, v *X) []atomic.Pointer[X] {
	out := make([]atomic.Pointer[X], len(s)+1)
	for j := range i {
		out[j].Store(s[j].Load())
	}
	out[i].Store(v)
	for j := i; j < len(s); j++ {
		out[j+1].Store(s[j].Load())
	}
	return out
}

// deleteSlot returns a new slice holding s without index i, or nil when
// nothing is left.
func deleteSlot[X any](s []atomic.Pointer[X], i int) []atomic.Pointer[X] {
	if len(s) == 1 {
		return nil
	}
	out := make([]atomic.Pointer[X], len(s)-1)
	for j := range i {
		out[j].Store(s[j].Load())
	}
	for j := i + 1; j < len(s); j++ {
		out[j-1].Store(s[j].Load())
	}
	return out
}

func (n *node[T]) withPrefix(idx uint8, e *entry[T]) *node[T] {
	c := n.clone()
	c.prefixBits.set(idx)
	c.prefixes = insertSlot(n.prefixes, c.prefixBits.rank(idx), e)
	return c
}

func (n *node[T]) withoutPrefix(idx uint8) *node[T] {
	c := n.clone()
	c.prefixes = deleteSlot(n.prefixes, n.prefixBits.rank(idx))
	c.prefixBits.clear(idx)
	return c
}

func (n *node[T]) withLeaf(o uint8, e *entry[T]) *node[T] {
	c := n.clone()
	c.leafBits.set(o)
	c.leaves = insertSlot(n.leaves, c.leafBits.rank(o), e)
	return c
}

func (n *node[T]) withoutLeaf(o uint8) *node[T] {
	c := n.clone()
	c.leaves = deleteSlot(n.leaves, n.leafBits.rank(o))
	c.leafBits.clear(o)
	return c
}

func (n *node[T]) withChild(o uint8, ch *node[T]) *node[T] {
	c := n.clone()
	c.childBits.set(o)
	c.children = insertSlot(n.children, c.childBits.rank(o), ch)
	return c
}

func (n *node[T]) withoutChild(o uint8) *node[T] {
	c := n.clone()
	c.children = deleteSlot(n.children, n.childBits.rank(o))
	c.childBits.clear(o)
	return c
}

// leafToChild replaces the leaf at octet o with child ch in one new node.
func (n *node[T]) leafToChild(o uint8, ch *node[T]) *node[T] {
	return n.withoutLeaf(o).withChild(o, ch)
}

// childToLeaf replaces the child at octet o with leaf e in one new node.
func (n *node[T]) childToLeaf(o uint8, e *entry[T]) *node[T] {
	return n.withoutChild(o).withLeaf(o, e)
}
