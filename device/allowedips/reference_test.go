package allowedips

import (
	"net/netip"
	"slices"
)

// refTable is the deliberately slow reference: a list scanned in full for
// the longest prefix that contains the address. Insertion order per value
// follows the kernel's rules (re-insert or move goes to the end).
type refTable struct {
	rows []refRow
}

type refRow struct {
	p netip.Prefix
	v int
}

func (r *refTable) index(p netip.Prefix) int {
	return slices.IndexFunc(r.rows, func(x refRow) bool { return x.p == p })
}

func (r *refTable) insert(p netip.Prefix, v int) {
	p = p.Masked()
	if i := r.index(p); i >= 0 {
		r.rows = slices.Delete(r.rows, i, i+1)
	}
	r.rows = append(r.rows, refRow{p, v})
}

func (r *refTable) remove(p netip.Prefix, v int) bool {
	p = p.Masked()
	i := r.index(p)
	if i < 0 || r.rows[i].v != v {
		return false
	}
	r.rows = slices.Delete(r.rows, i, i+1)
	return true
}

func (r *refTable) removeAll(v int) int {
	n := len(r.rows)
	r.rows = slices.DeleteFunc(r.rows, func(x refRow) bool { return x.v == v })
	return n - len(r.rows)
}

func (r *refTable) lookup(a netip.Addr) (int, bool) {
	best, v := -1, 0
	for _, x := range r.rows {
		if x.p.Addr().Is4() == a.Is4() && x.p.Contains(a) && x.p.Bits() > best {
			best, v = x.p.Bits(), x.v
		}
	}
	return v, best >= 0
}

func (r *refTable) prefixes(v int) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range r.rows {
		if x.v == v {
			out = append(out, x.p)
		}
	}
	return out
}
