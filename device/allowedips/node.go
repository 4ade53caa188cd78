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
	// The fields are ordered so that what every lookup step reads (the
	// child and leaf bitsets and slice headers, and the length of
	// prefixes) shares the first two cache lines of the node.

	// childBits marks octets with a child node; children holds them.
	childBits bitset256
	// leafBits marks octets whose whole subtree is one entry of length
	// >= 8d+8 (path compression); leaves holds them in octet order.
	leafBits bitset256
	children []atomic.Pointer[node[T]]
	leaves   []atomic.Pointer[entry[T]]
	prefixes []atomic.Pointer[entry[T]]
	// prefixBits marks the prefixes of length 8d+0..8d+7 held here, by
	// prefixIndex; prefixes holds them in index order.
	prefixBits bitset256
}

// longest returns the longest prefix held in n that covers octet o, or nil.
// The prefixes covering o are exactly the set ancestors[o], so the answer
// is the highest bit of their intersection with prefixBits.
func (n *node[T]) longest(o byte) *entry[T] {
	a := &ancestors[o]
	for w := 3; w >= 0; w-- {
		if m := n.prefixBits[w] & a[w]; m != 0 {
			idx := uint8(w<<6 | (63 - bits.LeadingZeros64(m)))
			return n.prefixes[n.prefixBits.rank(idx)].Load()
		}
	}
	return nil
}

// ancestors[o] holds the prefixIndex of every prefix of length 0..7 that
// covers octet o. It is computed once at package initialization and never
// written afterwards.
var ancestors = func() (t [256]bitset256) {
	for o := range 256 {
		for l := range stride {
			t[o].set(prefixIndex(byte(o), l))
		}
	}
	return t
}()

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
//
// The new slice is filled with plain copies, not atomic stores: it is not
// yet reachable by any reader, and the atomic store that later publishes its
// node orders these writes before any reader's load. Reading s plainly is
// safe because only the writer, which holds Table.mu, ever stores into it.
func insertSlot[X any](s []atomic.Pointer[X], i int, v *X) []atomic.Pointer[X] {
	out := make([]atomic.Pointer[X], len(s)+1)
	copy(out, s[:i])
	out[i].Store(v)
	copy(out[i+1:], s[i:])
	return out
}

// deleteSlot returns a new slice holding s without index i, or nil when
// nothing is left. It copies plainly for the reasons given on insertSlot.
func deleteSlot[X any](s []atomic.Pointer[X], i int) []atomic.Pointer[X] {
	if len(s) == 1 {
		return nil
	}
	out := make([]atomic.Pointer[X], len(s)-1)
	copy(out, s[:i])
	copy(out[i:], s[i+1:])
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
