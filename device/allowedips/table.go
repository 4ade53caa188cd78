// Package allowedips implements WireGuard's cryptokey routing table: the
// longest-prefix match from a packet's address to the peer that may send or
// receive it.
//
// The table is a multibit trie with a stride of eight bits. Each node keeps
// its prefixes, children and path-compressed leaves in dense slices indexed
// by the rank of a bit in a 256-bit set, so a lookup touches at most four
// nodes for IPv4 and sixteen for IPv6 and empty positions cost nothing.
//
// Concurrency: Lookup takes no lock and never waits for a writer. Writers
// (Insert, Remove, RemoveAll) serialize on a mutex among themselves and
// change the trie only by atomic stores that publish fully built nodes or
// entries (see node), so a concurrent Lookup sees each node either before or
// after a change, never half-way. Garbage collection stands in for the
// kernel's RCU grace period: a replaced node stays valid for as long as a
// reader holds it.
package allowedips

import (
	"errors"
	"iter"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ErrInvalidPrefix is returned for a prefix that is not valid (the zero
// netip.Prefix, or a prefix length out of range for its family).
var ErrInvalidPrefix = errors.New("allowedips: invalid prefix")

// Table maps IPv4 and IPv6 prefixes to values of type T, as WireGuard maps
// allowed IPs to peers. The zero Table is empty and ready to use. A Table
// must not be copied after first use.
type Table[T comparable] struct {
	// root4 and root6 are the trie roots; nil until the first insert.
	// Loaded by Lookup without a lock, stored only under mu.
	root4, root6 atomic.Pointer[node[T]]

	// mu serializes writers; Lookup never takes it.
	mu sync.Mutex
	// owners and count are guarded by mu.
	owners owners[T]
	count  int
}

// root returns the root pointer for the family of an address.
func (t *Table[T]) root(v6 bool) *atomic.Pointer[node[T]] {
	if v6 {
		return &t.root6
	}
	return &t.root4
}

// Lookup returns the value whose prefix is the longest to contain a, and
// whether there is one. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an
// IPv6 address here, matched only by IPv6 prefixes such as ::ffff:0:0/96 or
// ::/0, as the kernel and wireguard-go match the 16 address bytes of an
// IPv6 packet: a peer allowed 198.18.0.5/32 may not send IPv6 packets from
// ::ffff:198.18.0.5. Lookup is safe to call from any number of goroutines
// at any time, including while a writer changes the table, and allocates
// nothing.
func (t *Table[T]) Lookup(a netip.Addr) (T, bool) {
	var zero T
	if !a.IsValid() {
		return zero, false
	}
	e := lookup(t.root(a.Is6()).Load(), keyOf(a))
	if e == nil {
		return zero, false
	}
	return e.value, true
}

// Insert makes v the owner of p, with p's host bits cleared as wg does.
// If another value owned p, p moves to v, as WireGuard specifies; either
// way p becomes the last of v's prefixes in the order Prefixes reports,
// as in the kernel and wireguard-go.
func (t *Table[T]) Insert(p netip.Prefix, v T) error {
	if !p.IsValid() {
		return ErrInvalidPrefix
	}
	p = p.Masked()
	k, bits, v6 := keyOf(p.Addr()), p.Bits(), p.Addr().Is6()

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owners == nil {
		t.owners = make(owners[T])
	}
	root := t.root(v6)
	if old := find(root.Load(), k, bits); old != nil && old.value == v {
		t.owners.unlink(old)
		t.owners.push(old)
		return nil
	}
	e := &entry[T]{key: k, bits: uint8(bits), v6: v6, value: v}
	r := root.Load()
	if r == nil {
		r = &node[T]{}
	}
	nr, old := insert(r, 0, e)
	if nr != root.Load() {
		root.Store(nr)
	}
	if old != nil {
		t.owners.unlink(old)
	} else {
		t.count++
	}
	t.owners.push(e)
	return nil
}

// Remove deletes p (host bits cleared) if v owns it, and reports whether it
// did. A prefix owned by another value is left alone.
func (t *Table[T]) Remove(p netip.Prefix, v T) bool {
	if !p.IsValid() {
		return false
	}
	p = p.Masked()
	k, bits, v6 := keyOf(p.Addr()), p.Bits(), p.Addr().Is6()

	t.mu.Lock()
	defer t.mu.Unlock()
	e := find(t.root(v6).Load(), k, bits)
	if e == nil || e.value != v {
		return false
	}
	t.removeEntry(e)
	return true
}

// removeEntry takes e out of the trie and out of its owner's list.
// The caller holds t.mu.
func (t *Table[T]) removeEntry(e *entry[T]) {
	root := t.root(e.v6)
	r := root.Load()
	if nr, _ := remove(r, 0, e.key, int(e.bits)); nr != r {
		root.Store(nr)
	}
	t.owners.unlink(e)
	t.count--
}

// RemoveAll deletes every prefix owned by v, in time proportional to the
// number of v's prefixes, and returns how many it deleted.
func (t *Table[T]) RemoveAll(v T) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.owners.list(v)
	for _, e := range list {
		t.removeEntry(e)
	}
	return len(list)
}

// Prefixes returns v's prefixes in the order they were inserted (a prefix
// inserted again, or moved to v, goes to the end). This is the order the
// kernel and wireguard-go report allowed IPs in, so `wg show` and
// `wg showconf` print the same thing against either. The sequence is a
// snapshot taken when iteration starts; the loop body may change the table.
func (t *Table[T]) Prefixes(v T) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		for _, p := range t.AppendPrefixes(nil, v) {
			if !yield(p) {
				return
			}
		}
	}
}

// AppendPrefixes appends v's prefixes to dst, in the order Prefixes
// reports, and returns the extended slice. It exists for the UAPI get,
// which lists every peer's prefixes: with a reused dst it allocates
// nothing, where Prefixes must copy each list before yielding.
func (t *Table[T]) AppendPrefixes(dst []netip.Prefix, v T) []netip.Prefix {
	t.mu.Lock()
	defer t.mu.Unlock()
	head := t.owners[v]
	if head == nil {
		return dst
	}
	for e := head; ; e = e.next {
		dst = append(dst, e.prefix())
		if e.next == head {
			return dst
		}
	}
}

// Count returns the number of prefixes v owns.
func (t *Table[T]) Count(v T) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.owners.count(v)
}

// Len returns the number of prefixes in the table.
func (t *Table[T]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}
