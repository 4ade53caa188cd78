package allowedips

import "net/netip"

// entry is one allowed prefix and the value that owns it.
//
// The key, bits, v6 and value fields never change after the entry is
// published, so lock-free readers may read them; moving a prefix to another
// value publishes a new entry. The prev and next links belong to the writer
// (guarded by Table.mu) and are never read by Lookup.
type entry[T comparable] struct {
	key   key
	bits  uint8
	v6    bool
	value T

	// prev and next chain the entries of one value in insertion order, as a
	// circular list whose head is in Table.owners. Guarded by Table.mu.
	prev, next *entry[T]
}

// prefix returns the entry as a netip.Prefix.
func (e *entry[T]) prefix() netip.Prefix {
	return netip.PrefixFrom(e.key.addr(e.v6), int(e.bits))
}

// owners maps each value to the head of its circular list of entries. It is
// what lets RemoveAll and Prefixes cost time in proportion to one value's
// prefixes rather than to the whole table. Guarded by Table.mu.
type owners[T comparable] map[T]*entry[T]

// push appends e at the tail of the list of e.value.
func (o owners[T]) push(e *entry[T]) {
	head := o[e.value]
	if head == nil {
		e.prev, e.next = e, e
		o[e.value] = e
		return
	}
	tail := head.prev
	e.prev, e.next = tail, head
	tail.next = e
	head.prev = e
}

// unlink removes e from the list of e.value.
func (o owners[T]) unlink(e *entry[T]) {
	switch {
	case e.next == e:
		delete(o, e.value)
	default:
		e.prev.next = e.next
		e.next.prev = e.prev
		if o[e.value] == e {
			o[e.value] = e.next
		}
	}
	e.prev, e.next = nil, nil
}

// count returns the number of entries of v.
func (o owners[T]) count(v T) int {
	head := o[v]
	if head == nil {
		return 0
	}
	n := 1
	for e := head.next; e != head; e = e.next {
		n++
	}
	return n
}

// list returns the entries of v in insertion order.
func (o owners[T]) list(v T) []*entry[T] {
	head := o[v]
	if head == nil {
		return nil
	}
	var out []*entry[T]
	for e := head; ; e = e.next {
		out = append(out, e)
		if e.next == head {
			return out
		}
	}
}
