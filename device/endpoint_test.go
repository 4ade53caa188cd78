package device

import (
	"net/netip"
	"testing"
)

func TestEndpointScope(t *testing.T) {
	for in, want := range map[string]int32{
		"198.18.0.1:51820":            0,
		"[fd00::1%7]:51820":           0, // not link-local: the kernel takes no scope
		"[fe80::1]:51820":             0,
		"[fe80::1%7]:51820":           7,
		"[fe80::1%lo]:51820":          1, // lo is 1 in every namespace
		"[fe80::1%nosuchlink0]:51820": 0,
	} {
		if got := endpointScope(netip.MustParseAddrPort(in)); got != want {
			t.Errorf("endpointScope(%s) = %d, want %d", in, got, want)
		}
	}
	for _, c := range []struct {
		in   string
		idx  int32
		want string
	}{
		{"[fe80::1]:5", 1, "[fe80::1%lo]:5"},
		{"[fe80::1%7]:5", 1, "[fe80::1%7]:5"}, // as configured
		{"[fd00::1]:5", 1, "[fd00::1]:5"},
		{"[fe80::1]:5", 0, "[fe80::1]:5"},
	} {
		if got := endpointWithZone(netip.MustParseAddrPort(c.in), c.idx); got.String() != c.want {
			t.Errorf("endpointWithZone(%s, %d) = %s, want %s", c.in, c.idx, got, c.want)
		}
	}
}
