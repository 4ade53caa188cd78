package ipc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
	"github.com/wgdvpn/wgd/tun"
)

// The differential test: random set transactions go to a real wgd device
// (through ParseSet and Apply, as the server runs them) and to a
// wireguard-go device (IpcSetOperation) in the same state. Both must accept or both
// refuse, with the same errno, and after an accepted one both must answer
// get with the same configuration. wireguard-go applies the lines before a
// bad one, where wgd applies nothing, so after a refusal wireguard-go is put
// back into wgd's state. The wireguard-go device is never brought up, so
// it sends nothing; the wgd device runs, and the handshakes and keepalives
// it sends go only to UDP sinks the test holds on loopback (the random
// test) or nowhere, because it has no private key (the fuzz target).

// diffKeys is a pool of keys the generator draws from, so that transactions
// touch the same peers again; key 0 doubles as the private key of the
// devices in some transactions (a peer with the device's own public key).
type diffKeys struct {
	priv []noise.PrivateKey
	pub  []noise.PublicKey
}

func newDiffKeys(t testing.TB, n int) diffKeys {
	var k diffKeys
	for range n {
		p, err := noise.NewPrivateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		k.priv = append(k.priv, p)
		k.pub = append(k.pub, p.PublicKey())
	}
	return k
}

// diffGen writes random set transactions: mostly valid lines, some with
// values or keys that one of the two parsers might treat differently.
type diffGen struct {
	r    *rand.Rand
	keys diffKeys
	// eps are the valid endpoints to use: UDP sinks the test holds on
	// loopback, so that the handshakes and keepalives the wgd device sends
	// (it has keys and is up) reach nothing else.
	eps []string
}

func (g *diffGen) pick(vals ...string) string { return vals[g.r.IntN(len(vals))] }

// bad decides that the next value is one of the doubtful ones: about one
// line in twelve, so that most transactions are accepted.
func (g *diffGen) bad() bool { return g.r.IntN(12) == 0 }

func (g *diffGen) hexKey() string {
	if !g.bad() {
		return g.keys.priv[g.r.IntN(len(g.keys.priv))].Hex()
	}
	return g.pick(strings.Repeat("0", 64), strings.Repeat("0", 63), strings.Repeat("A", 64),
		strings.ToUpper(g.keys.priv[0].Hex()), strings.Repeat("g", 64), "", strings.Repeat("00", 33))
}

func (g *diffGen) deviceLine() string {
	switch g.r.IntN(12) {
	case 0, 1:
		return "private_key=" + g.hexKey()
	case 2:
		return "replace_peers=" + g.pickBad(g.bad(), "true", "false", "", "1", "TRUE")
	case 3:
		// Only port 0 (and bad values): a real port could be taken on this
		// host, and the two devices of this process would fight over it.
		return "listen_port=" + g.pickBad(g.bad(), "0", "65536", "-1", "x", "", " 1")
	case 4:
		// fwmark 0 or bad values only: a non-zero mark needs root here.
		return "fwmark=" + g.pickBad(g.bad(), "0", "4294967296", "0x10", "-1", "")
	case 5:
		if g.bad() {
			return g.pick("bogus=1", "no equals sign", "=", "public_key_extra=1", "get=1")
		}
		return g.peerSection()
	default:
		return g.peerSection()
	}
}

func (g *diffGen) peerSection() string {
	var b strings.Builder
	if g.bad() {
		fmt.Fprintf(&b, "public_key=%s\n", g.pick("zz", strings.Repeat("0", 64), "", strings.Repeat("f", 65)))
	} else {
		fmt.Fprintf(&b, "public_key=%s\n", g.keys.pub[g.r.IntN(len(g.keys.pub))].Hex())
	}
	for range g.r.IntN(6) {
		b.WriteString(g.peerLine())
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (g *diffGen) peerLine() string {
	bad := g.bad()
	switch g.r.IntN(14) {
	case 0:
		return "update_only=" + g.pickBad(bad, "true", "false", "")
	case 1:
		return "remove=" + g.pickBad(bad, "true", "false", "yes")
	case 2:
		if g.r.IntN(3) == 0 {
			return "preshared_key=" + strings.Repeat("0", 64)
		}
		return "preshared_key=" + g.hexKey()
	case 3, 4:
		if bad {
			return "endpoint=" + g.pick("198.18.0.5", ":51820", "[fd00::1]", "host.invalid:1",
				"198.18.0.6:65536", "[fd00::3]:x", "fd00::4:1", "[fd00::2%]:7", "")
		}
		return "endpoint=" + g.pick(g.eps...)
	case 5:
		return "persistent_keepalive_interval=" + g.pickBad(bad, g.pick("0", "25", "65535"), "65536", "-1", "x", "")
	case 6:
		return "replace_allowed_ips=" + g.pickBad(bad, "true", "false", "")
	case 7:
		return "protocol_version=" + g.pickBad(bad, "1", "2", "0", "")
	case 8:
		if bad {
			return g.pick("bogus=1", "private_key="+g.hexKey(), "listen_port=0", "no equals sign", "replace_peers=true")
		}
		return "persistent_keepalive_interval=0"
	default:
		return "allowed_ip=" + g.allowedIP(bad)
	}
}

// pickBad returns good unless bad, then one of the others.
func (g *diffGen) pickBad(bad bool, good string, others ...string) string {
	if !bad {
		return good
	}
	return g.pick(others...)
}

func (g *diffGen) allowedIP(bad bool) string {
	neg := ""
	if g.r.IntN(4) == 0 {
		neg = "-"
	}
	if bad {
		return neg + g.pick("198.18.0.1", "198.18.0.0/33", "fd00::/129", "x/1", "", "198.18.0.1/-1",
			"198.18.0.1/08", "fe80::1%eth0/64", " 198.18.0.0/24", "--198.18.0.0/24")
	}
	switch g.r.IntN(8) {
	case 0:
		return neg + g.pick("198.18.0.0/15", "0.0.0.0/0", "::/0", "fd00::/8", "::ffff:198.18.0.0/120")
	case 1, 2:
		return fmt.Sprintf("%sfd00::%x/%d", neg, g.r.IntN(8), 120+g.r.IntN(9))
	default:
		return fmt.Sprintf("%s198.18.%d.%d/%d", neg, g.r.IntN(4), g.r.IntN(4), 28+g.r.IntN(5))
	}
}

func (g *diffGen) transaction() string {
	var lines []string
	for range 1 + g.r.IntN(5) {
		lines = append(lines, g.deviceLine())
	}
	return strings.Join(lines, "\n") + "\n\n"
}

// wgdApply runs a transaction as the UAPI server does and returns the
// errno it would answer (0 on success).
func wgdApply(dev *device.Device, req string) int {
	cfg, err := ParseSet(bufio.NewReader(strings.NewReader(req)), Limits{})
	if err == nil {
		err = dev.Apply(cfg)
	}
	return int(errnoOf(err))
}

// wggoApply runs a transaction on wireguard-go and returns its errno.
func wggoApply(dev *wgdevice.Device, req string) int {
	err := dev.IpcSetOperation(strings.NewReader(req))
	if err == nil {
		return 0
	}
	var e *wgdevice.IPCError
	if errors.As(err, &e) {
		return int(-e.ErrorCode())
	}
	return -1
}

func wgdGet(t testing.TB, dev *device.Device) string {
	var b bytes.Buffer
	if err := WriteGet(&b, dev); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// normalizeGet drops what differs by design (the listen port: wgd binds a
// real one, wireguard-go's down device none; the traffic counters and
// handshake times: wgd's device is up and sends handshakes to the sinks)
// and sorts the peers
// (wireguard-go lists them in map order); every peer's lines, allowed IPs
// included, keep their order.
func normalizeGet(get string) string {
	var dev []string
	var peers []string
	cur := -1
	for line := range strings.Lines(get) {
		k, _, _ := strings.Cut(line, "=")
		switch k {
		case "listen_port", "tx_bytes", "rx_bytes", "last_handshake_time_sec", "last_handshake_time_nsec":
			continue
		}
		if strings.HasPrefix(line, "public_key=") {
			peers = append(peers, "")
			cur = len(peers) - 1
		}
		if cur < 0 {
			dev = append(dev, line)
		} else {
			peers[cur] += line
		}
	}
	slices.Sort(peers)
	return strings.Join(dev, "") + strings.Join(peers, "")
}

// resync puts wireguard-go into wgd's state: all peers replaced by wgd's,
// in wgd's order, with wgd's private key (or none) and fwmark.
func resync(t testing.TB, g *wgdevice.Device, get string) {
	var b strings.Builder
	b.WriteString("replace_peers=true\n")
	if !strings.Contains(get, "private_key=") {
		b.WriteString("private_key=" + strings.Repeat("0", 64) + "\n")
	}
	if !strings.Contains(get, "fwmark=") {
		b.WriteString("fwmark=0\n")
	}
	for line := range strings.Lines(get) {
		k, _, _ := strings.Cut(line, "=")
		switch k {
		case "listen_port", "protocol_version", "last_handshake_time_sec", "last_handshake_time_nsec", "tx_bytes", "rx_bytes":
			continue
		}
		b.WriteString(line)
	}
	b.WriteString("\n")
	if err := g.IpcSetOperation(strings.NewReader(b.String())); err != nil {
		t.Fatalf("resync wireguard-go: %v\n%s", err, b.String())
	}
}

// diffPair is a wgd device and a wireguard-go device kept in one state.
type diffPair struct {
	t      testing.TB
	ours   *device.Device
	theirs *wgdevice.Device
	eps    []string // loopback endpoints that lead to the sinks
}

func newDiffPair(t testing.TB) *diffPair {
	dtun, host, err := tun.NewSocketpair("wgddiff", 1420)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	ours, err := device.New(device.Options{TUN: dtun})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ours.Close() })
	theirs := wgdevice.NewDevice(tuntest.NewChannelTUN().TUN(), wgconn.NewStdNetBind(),
		wgdevice.NewLogger(wgdevice.LogLevelSilent, ""))
	t.Cleanup(theirs.Close)
	d := &diffPair{t: t, ours: ours, theirs: theirs}
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		sink, err := net.ListenPacket("udp", a)
		if err != nil {
			continue // no IPv6 here
		}
		t.Cleanup(func() { sink.Close() })
		ap := netip.MustParseAddrPort(sink.LocalAddr().String())
		d.eps = append(d.eps, ap.String())
		if ap.Addr().Is4() {
			d.eps = append(d.eps, netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()).String())
		} else {
			d.eps = append(d.eps, netip.AddrPortFrom(ap.Addr().WithZone("1"), ap.Port()).String())
		}
	}
	return d
}

// apply runs one transaction on both and returns what differed ("" when
// nothing did) and wgd's errno. After a refusal, or a divergence, the
// wireguard-go side is put back into wgd's state for the next call.
func (d *diffPair) apply(req string) (string, int) {
	before := wgdGet(d.t, d.ours)
	e1, e2 := wgdApply(d.ours, req), wggoApply(d.theirs, req)
	after := wgdGet(d.t, d.ours)
	if e1 != 0 && normalizeGet(after) != normalizeGet(before) {
		d.t.Fatalf("refused transaction (errno %d) changed wgd:\n%q\nbefore:\n%s\nafter:\n%s", e1, req, before, after)
	}
	if e1 != e2 {
		resync(d.t, d.theirs, after)
		return fmt.Sprintf("wgd errno %d, wireguard-go errno %d", e1, e2), e1
	}
	if e1 != 0 {
		resync(d.t, d.theirs, after)
		return "", e1
	}
	tg, err := d.theirs.IpcGet()
	if err != nil {
		d.t.Fatal(err)
	}
	if got, want := normalizeGet(after), normalizeGet(tg); got != want {
		resync(d.t, d.theirs, after)
		return fmt.Sprintf("states differ:\nwgd:\n%s\nwireguard-go:\n%s", got, want), 0
	}
	return "", 0
}

func TestDifferentialSetAgainstWireGuardGo(t *testing.T) {
	d := newDiffPair(t)
	gen := &diffGen{r: rand.New(rand.NewPCG(1, 2)), keys: newDiffKeys(t, 5), eps: d.eps}
	const rounds = 3000
	var accepted, refused, diverged int
	for i := range rounds {
		req := gen.transaction()
		diff, errno := d.apply(req)
		if errno == 0 {
			accepted++
		} else {
			refused++
		}
		if diff != "" {
			diverged++
			if diverged <= 10 {
				t.Errorf("round %d: %s\nfor\n%s", i, diff, req)
			}
		}
	}
	t.Logf("%d transactions: %d accepted, %d refused, %d diverged", rounds, accepted, refused, diverged)
	if accepted < rounds/3 || refused < rounds/10 {
		t.Errorf("generator out of balance: %d accepted, %d refused", accepted, refused)
	}
}

// TestDifferentialFlagOrderings: the flag orderings wg and wgctrl never
// send, each from an empty device, give wireguard-go's state. update_only
// on an absent peer followed by allowed_ip and replace_allowed_ips created
// the peer in wgd (and it sent handshakes to its endpoint); wireguard-go
// ignores the rest of such a section.
func TestDifferentialFlagOrderings(t *testing.T) {
	d := newDiffPair(t)
	keys := newDiffKeys(t, 2)
	p, q := keys.pub[0].Hex(), keys.pub[1].Hex()
	const (
		u = "update_only=true\n"
		r = "replace_allowed_ips=true\n"
		x = "allowed_ip=198.18.20.0/24\n"
		y = "allowed_ip=198.18.21.0/24\n"
	)
	ep := "endpoint=" + d.eps[0] + "\npersistent_keepalive_interval=0\n"
	sections := []string{
		u + x + r, u + x + r + y, u + r + x + r, u + x + r + ep, u + x + "remove=true\n" + y,
		x + u + r + y, x + r + u + y, u + x, u + x + u, x + "remove=true\n" + y, r + x + r + y,
		"remove=true\n" + x + r + y,
	}
	for _, sec := range sections {
		for _, req := range []string{
			"public_key=" + p + "\n" + sec + "\n",
			"public_key=" + p + "\n" + u + x + r + "public_key=" + p + "\n" + sec + "\n",
			"public_key=" + q + "\nallowed_ip=198.18.20.0/24\npublic_key=" + p + "\n" + sec + "\n",
		} {
			if e1, e2 := wgdApply(d.ours, "replace_peers=true\n\n"), wggoApply(d.theirs, "replace_peers=true\n\n"); e1 != 0 || e2 != 0 {
				t.Fatalf("reset: errno %d, %d", e1, e2)
			}
			if diff, _ := d.apply(req); diff != "" {
				t.Errorf("%s\nfor\n%s", diff, req)
			}
		}
	}
}

// FuzzDifferentialSet feeds arbitrary request bodies (terminated by the
// blank line wg always sends) to both implementations. The seeds are
// transactions from the generator. Lines that set a private key are dropped
// from the input: without a key the wgd device sends nothing, wherever the
// fuzzer's endpoints point. A listen_port or fwmark line with a number gets
// 0 instead: both devices live in this process (a port one binds, the other
// cannot), and a mark needs root.
func FuzzDifferentialSet(f *testing.F) {
	gen := &diffGen{r: rand.New(rand.NewPCG(3, 4)), keys: newDiffKeys(f, 3),
		eps: []string{"198.18.0.1:51820", "[fd00::1]:51820", "[fd00::2%1]:7", "[::ffff:198.18.0.3]:9"}}
	for range 40 {
		f.Add([]byte(strings.TrimSuffix(gen.transaction(), "\n")))
	}
	// Long lines: both bound a line at 64 KiB, newline included.
	for _, n := range []int{4000, 5000, 65535 - 11, 65536 - 11, 70000} {
		f.Add([]byte("allowed_ip=" + strings.Repeat("1", n)))
		f.Add([]byte("public_key=" + strings.Repeat("a", 64) + "\nendpoint=" + strings.Repeat("x", n)))
	}
	d := newDiffPair(f)
	const reset = "replace_peers=true\nfwmark=0\n\n"
	f.Fuzz(func(t *testing.T, body []byte) {
		d.t = t
		// Each input starts from an empty device on both sides, so that a
		// failing input reproduces on its own.
		if e1, e2 := wgdApply(d.ours, reset), wggoApply(d.theirs, reset); e1 != 0 || e2 != 0 {
			t.Fatalf("reset: errno %d, %d", e1, e2)
		}
		var kept []string
		for line := range strings.Lines(string(body)) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
			switch {
			case strings.HasPrefix(line, "private_key"):
				continue
			case (k == "listen_port" || k == "fwmark") && v != "" && strings.Trim(v, "0123456789") == "":
				line = k + "=0\n"
			}
			kept = append(kept, line)
		}
		req := strings.Join(kept, "")
		if diff, _ := d.apply(req + "\n\n"); diff != "" {
			t.Fatalf("%s\nfor %q", diff, req)
		}
	})
}
