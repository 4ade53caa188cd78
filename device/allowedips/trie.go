package allowedips

// This file holds the trie algorithms. lookup runs without locks; insert,
// remove and find run only under Table.mu and follow the publication rule
// documented on node.

// lookup returns the entry with the longest prefix covering k in the trie
// rooted at n, or nil. It allocates nothing and takes no lock: every node it
// reaches was fully built before an atomic store made it reachable.
func lookup[T comparable](n *node[T], k key) *entry[T] {
	var best *entry[T]
	for depth := 0; n != nil; depth++ {
		o := k.octet(depth)
		if len(n.prefixes) != 0 {
			if e := n.longest(o); e != nil {
				best = e
			}
		}
		if n.childBits.test(o) {
			n = n.children[n.childBits.rank(o)].Load()
			continue
		}
		if n.leafBits.test(o) {
			if e := n.leaves[n.leafBits.rank(o)].Load(); k.hasPrefix(e.key, int(e.bits)) {
				best = e
			}
		}
		break
	}
	return best
}

// find returns the entry stored for exactly k/bits, or nil.
func find[T comparable](n *node[T], k key, bits int) *entry[T] {
	for depth := 0; n != nil; depth++ {
		o := k.octet(depth)
		if bits < stride*depth+stride {
			idx := prefixIndex(o, bits-stride*depth)
			if !n.prefixBits.test(idx) {
				return nil
			}
			return n.prefixes[n.prefixBits.rank(idx)].Load()
		}
		if n.childBits.test(o) {
			n = n.children[n.childBits.rank(o)].Load()
			continue
		}
		if n.leafBits.test(o) {
			e := n.leaves[n.leafBits.rank(o)].Load()
			if int(e.bits) == bits && e.key == k {
				return e
			}
		}
		return nil
	}
	return nil
}

// insert stores e in the subtree of n, which sits at depth. It returns the
// node that must take n's place (n itself when n changed only in place) and
// the entry e displaced, if one had the same prefix.
func insert[T comparable](n *node[T], depth int, e *entry[T]) (*node[T], *entry[T]) {
	o := e.key.octet(depth)
	if int(e.bits) < stride*depth+stride {
		idx := prefixIndex(o, int(e.bits)-stride*depth)
		if n.prefixBits.test(idx) {
			return n, n.prefixes[n.prefixBits.rank(idx)].Swap(e)
		}
		return n.withPrefix(idx, e), nil
	}
	if n.childBits.test(o) {
		slot := &n.children[n.childBits.rank(o)]
		c := slot.Load()
		nc, old := insert(c, depth+1, e)
		if nc != c {
			slot.Store(nc)
		}
		return n, old
	}
	if !n.leafBits.test(o) {
		return n.withLeaf(o, e), nil
	}
	slot := &n.leaves[n.leafBits.rank(o)]
	l := slot.Load()
	if l.bits == e.bits && l.key == e.key {
		return n, slot.Swap(e)
	}
	// Two entries now share this octet: push both one level down.
	c, _ := insert(&node[T]{}, depth+1, l)
	c, _ = insert(c, depth+1, e)
	return n.leafToChild(o, c), nil
}

// remove deletes the entry for exactly k/bits, which must exist, from the
// subtree of n at depth. It returns what must take n's place: a node (n
// itself when changed in place), or nil and the single entry left when n
// has collapsed to one entry that the parent should hold as a leaf, or nil
// and nil when n became empty. The root (depth 0) never collapses.
func remove[T comparable](n *node[T], depth int, k key, bits int) (*node[T], *entry[T]) {
	o := k.octet(depth)
	switch {
	case bits < stride*depth+stride:
		n = n.withoutPrefix(prefixIndex(o, bits-stride*depth))
	case n.childBits.test(o):
		slot := &n.children[n.childBits.rank(o)]
		c := slot.Load()
		switch nc, leaf := remove(c, depth+1, k, bits); {
		case leaf != nil:
			n = n.childToLeaf(o, leaf)
		case nc == nil:
			n = n.withoutChild(o)
		case nc != c:
			slot.Store(nc)
			return n, nil
		default:
			return n, nil
		}
	case n.leafBits.test(o):
		n = n.withoutLeaf(o)
	default:
		return n, nil
	}
	if depth == 0 {
		return n, nil
	}
	if n.size() == 0 {
		return nil, nil
	}
	if e := n.sole(); e != nil {
		return nil, e
	}
	return n, nil
}
