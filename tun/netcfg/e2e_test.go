package netcfg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNS is a fresh network namespace with an ifb link standing in for the
// WireGuard interface (this kernel has neither wireguard nor dummy; ifb is a
// plain single link with carrier that routes accept), and a Runner pointed into it with fake DNS tools.
type testNS struct {
	t     *testing.T
	name  string
	h     *netlink.Handle
	dir   string
	r     *Runner
	mu    sync.Mutex
	lines []string
}

const testIface = "wgt0"

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	var b [4]byte
	rand.Read(b[:])
	n := &testNS{t: t, name: "wgdnetcfg-" + hex.EncodeToString(b[:]), dir: t.TempDir()}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	ns, err := netns.GetFromName(n.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	if n.h, err = netlink.NewHandleAt(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.h.Close)
	lo, _ := n.h.LinkByName("lo")
	n.h.LinkSetUp(lo)
	n.r = n.runner()
	return n
}

func (n *testNS) runner() *Runner {
	fake := filepath.Join(n.dir, "resolvconf")
	script := "#!/bin/sh\necho \"argv: $*\" >> " + n.dir + "/dns.log\ncat >> " + n.dir + "/dns.log\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		n.t.Fatal(err)
	}
	order := filepath.Join(n.dir, "interface-order")
	os.WriteFile(order, []byte("lo.inet*\nlo.dnsmasq\ntun*\n"), 0o644)
	exe := []string{"ip", "netns", "exec", n.name}
	return &Runner{
		Handle: n.h,
		Print: func(format string, args ...any) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.lines = append(n.lines, fmt.Sprintf(format, args...))
		},
		Stdout:         &bytes.Buffer{},
		Stderr:         &bytes.Buffer{},
		Resolvconf:     []string{fake},
		Nft:            append(exe, "nft"),
		LookPath:       func(string) (string, error) { return "", exec.ErrNotFound },
		InterfaceOrder: order,
		RTTables:       []string{},
		WriteSysctl: func(name, value string) error {
			return exec.Command("ip", append(exe[1:], "sysctl", "-q", "-w", name+"="+value)...).Run()
		},
	}
}

// takeLines returns the "[#]" lines printed since the last call.
func (n *testNS) takeLines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.lines
	n.lines = nil
	return l
}

func (n *testNS) addLink(name string) netlink.Link {
	n.t.Helper()
	if err := n.h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		n.t.Fatalf("add ifb %s: %v", name, err)
	}
	l, err := n.h.LinkByName(name)
	if err != nil {
		n.t.Fatal(err)
	}
	return l
}

// device is a Device whose interface is an ifb link, recording the fwmark.
func (n *testNS) device(mark *uint32) Device {
	return Device{
		Create: func(context.Context) error { n.addLink(testIface); return nil },
		Delete: func() error {
			l, err := n.h.LinkByName(testIface)
			if err != nil {
				return err
			}
			return n.h.LinkDel(l)
		},
		SetFwMark: func(m uint32) error { *mark = m; return nil },
		FwMark:    func() (uint32, error) { return *mark, nil },
	}
}

// ip runs ip(8) in the namespace and returns its output.
func (n *testNS) ip(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (n *testNS) exec(args ...string) string {
	out, _ := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput()
	return string(out)
}

func (n *testNS) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, name))
	return string(b)
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func mustNotContain(t *testing.T, what, got string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(got, b) {
			t.Errorf("%s still has %q:\n%s", what, b, got)
		}
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
