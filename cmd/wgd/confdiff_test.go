package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// confGen writes random wg(8)-style configuration files: mostly valid,
// with the variations wg's parser allows (key case, spaces, comments,
// CRLF, repeated keys, lists) and values it may refuse. Endpoints are only
// numeric or malformed without a host name, so that neither wg nor wgd
// ever asks a resolver.
type confGen struct {
	r    *rand.Rand
	keys []string // base64 keys
}

func (g *confGen) pick(vals ...string) string { return vals[g.r.IntN(len(vals))] }
func (g *confGen) bad() bool                  { return g.r.IntN(10) == 0 }
func (g *confGen) key() string {
	if g.bad() {
		return g.pick("", "abc", strings.Repeat("A", 43), strings.Repeat("A", 43)+"==", g.keys[0][:40], g.keys[0]+"x")
	}
	return g.keys[g.r.IntN(len(g.keys))]
}

// name writes a key name in one of the spellings wg accepts (it compares
// names without regard to case) or, rarely, a wrong one.
func (g *confGen) name(n string) string {
	switch g.r.IntN(12) {
	case 0:
		return strings.ToLower(n)
	case 1:
		return strings.ToUpper(n)
	case 2:
		if g.bad() {
			return n + "s"
		}
	}
	return n
}

func (g *confGen) line(k, v string) string {
	sep := g.pick("=", " = ", "= ", " =", "\t=\t")
	return g.name(k) + sep + v
}

func (g *confGen) ips() string {
	n := 1 + g.r.IntN(3)
	var out []string
	for range n {
		switch {
		case g.bad():
			out = append(out, g.pick("198.18.0.0/33", "fd00::/129", "x", "198.18.0.1/-1", "198.18.0.0/", "/24", "198.18.0.0/24/1"))
		case g.r.IntN(3) == 0:
			out = append(out, fmt.Sprintf("fd00::%x/%d", g.r.IntN(16), 64+g.r.IntN(65)))
		default:
			out = append(out, fmt.Sprintf("198.18.%d.%d/%d", g.r.IntN(4), g.r.IntN(256), 16+g.r.IntN(17)))
		}
	}
	return strings.Join(out, g.pick(",", ", ", " ,"))
}

func (g *confGen) endpoint() string {
	if g.bad() {
		return g.pick("198.18.0.1", "198.18.0.1:", "198.18.0.1:65536", "[fd00::1", "[fd00::1]", "fd00::1:51820", ":51820", "[]:1", "198.18.0.1:-1")
	}
	return g.pick("198.18.0.1:51820", "198.18.0.2:1", "[fd00::1]:51820", "[fd00::2]:65535", "198.18.0.3:0")
}

func (g *confGen) interfaceSection() []string {
	lines := []string{g.pick("[Interface]", "[Interface]", "[interface]", "[INTERFACE]")}
	for range g.r.IntN(4) {
		switch g.r.IntN(6) {
		case 0, 1:
			lines = append(lines, g.line("PrivateKey", g.key()))
		case 2:
			lines = append(lines, g.line("ListenPort", g.pick("0", "51820", "1", "65535", "65536", "-1", "x", "")))
		case 3:
			lines = append(lines, g.line("FwMark", g.pick("0", "off", "0x10", "1234", "4294967295", "4294967296", "x", "")))
		case 4:
			lines = append(lines, g.pick("# a comment", "", "   ", "; not a comment"))
		default:
			if g.bad() {
				lines = append(lines, g.line(g.pick("Address", "DNS", "MTU", "Table", "PreUp", "SaveConfig", "Bogus"), "1"))
			}
		}
	}
	return lines
}

func (g *confGen) peerSection() []string {
	lines := []string{g.pick("[Peer]", "[Peer]", "[peer]")}
	if !g.bad() {
		lines = append(lines, g.line("PublicKey", g.key()))
	}
	for range g.r.IntN(5) {
		switch g.r.IntN(7) {
		case 0, 1:
			lines = append(lines, g.line("AllowedIPs", g.ips()))
		case 2:
			lines = append(lines, g.line("Endpoint", g.endpoint()))
		case 3:
			lines = append(lines, g.line("PersistentKeepalive", g.pick("0", "25", "off", "65535", "65536", "x", "")))
		case 4:
			lines = append(lines, g.line("PresharedKey", g.key()))
		case 5:
			lines = append(lines, g.pick("# peer comment", "", "PublicKey = "+g.key()))
		default:
			if g.bad() {
				lines = append(lines, g.pick("[Bogus]", "AllowedIPs", "= 1", "Endpoint = 198.18.0.1:1 # trailing"))
			}
		}
	}
	return lines
}

func (g *confGen) file() string {
	var lines []string
	if g.r.IntN(8) != 0 {
		lines = append(lines, g.interfaceSection()...)
	}
	for range g.r.IntN(4) {
		lines = append(lines, g.peerSection()...)
	}
	eol := "\n"
	if g.r.IntN(10) == 0 {
		eol = "\r\n"
	}
	return strings.Join(lines, eol) + eol
}

// randomWgFixture is what the randomized comparisons share: a fake UAPI
// interface for the real wg, the same state for wgd, a generator with four
// keys, and an environment in which neither retries name resolution.
type randomWgFixture struct {
	name string
	srv  *fakeUAPI
	fb   *fakeBackend
	g    *confGen
	env  []string
}

func newRandomWgFixture(t *testing.T, prefix string, seed uint64, keySeed byte) *randomWgFixture {
	needRootAndWg(t)
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	d := sampleState(t, name, time.Now())
	f := &randomWgFixture{
		name: name, srv: startFakeUAPI(t, d),
		fb:  &fakeBackend{names: []string{name}, devs: map[string]deviceState{name: d}},
		g:   &confGen{r: rand.New(rand.NewPCG(seed, seed+1))},
		env: []string{"WG_ENDPOINT_RESOLUTION_RETRIES=0"},
	}
	for i := range 4 {
		f.g.keys = append(f.g.keys, testKey(t, keySeed+byte(i)).String())
	}
	return f
}

// compare runs args through the real wg and run through wgd and returns
// both outcomes: exit code, stderr, UAPI set request.
func (f *randomWgFixture) compare(t *testing.T, args []string, run func(*wgEnv) int) (wrc int, werr, wset string, rc int, errb, set string) {
	_, werr, wrc = runWg(t, f.env, args...)
	wset = f.srv.takeSet()
	rc, errb, set = runWgd(f.fb, f.env, run)
	return wrc, werr, wset, rc, errb, set
}

// documentedRefusals are wgd's refusals of files that wg accepts, each a
// difference that docs/configuration.md names: two peers with one public
// key, an endpoint port 0, a ListenPort above 65535 (wg wraps it).
var documentedRefusals = []string{"is already the key of the peer at line", "has an invalid port (1-65535)", "is not a port number (0-65535)"}

// TestE2ESetconfRandomMatchesWg runs random configuration files through the
// real `wg setconf` (or addconf, every third file) and wgd's against the
// same (fake) interface:
// both must accept or both refuse (but for the documented refusals), and
// when they accept they must send the same UAPI transaction. wgd's error
// messages are its own (they name the file, line and key), so only the
// outcome is compared.
func TestE2ESetconfRandomMatchesWg(t *testing.T) {
	f := newRandomWgFixture(t, "wgdr", 5, 40)
	dir := t.TempDir()
	const files = 300
	var accepted, diverged, refusedOnPurpose int
	for i := range files {
		text := f.g.file()
		path := filepath.Join(dir, fmt.Sprintf("c%d.conf", i))
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		mode := modeSet
		if i%3 == 2 {
			mode = modeAdd
		}
		wrc, werr, wset, rc, errb, got := f.compare(t, []string{confModeNames[mode], f.name, path},
			func(e *wgEnv) int { return runSetconf(e, mode, []string{f.name, path}) })
		documented := false
		for _, d := range documentedRefusals {
			documented = documented || (wrc == 0 && rc != 0 && strings.Contains(errb, d))
		}
		if documented {
			refusedOnPurpose++
			continue
		}
		if (rc == 0) != (wrc == 0) || got != wset {
			diverged++
			if diverged <= 8 {
				t.Errorf("%s file %d:\n%s\nwg  rc %d %q\n    %q\nwgd rc %d %q\n    %q", confModeNames[mode], i, text, wrc, werr, wset, rc, errb, got)
			}
		}
		if wrc == 0 {
			accepted++
		}
	}
	t.Logf("%d files: %d accepted by wg, %d refused by wgd on purpose, %d diverged", files, accepted, refusedOnPurpose, diverged)
	if accepted < files/5 || accepted > files*4/5 {
		t.Errorf("generator out of balance: wg accepted %d of %d", accepted, files)
	}
}

// setArgs writes a random `wg set` command line (after the interface
// name): mostly well-formed, with some wrong words, values and files.
func (g *confGen) setArgs(files map[string]string) []string {
	var args []string
	file := func() string {
		return files[g.pick("key", "key", "zero", "bad", "missing", "null", "psk")]
	}
	for range g.r.IntN(4) {
		switch g.r.IntN(5) {
		case 0:
			args = append(args, "listen-port", g.pick("0", "51820", "65535", "65536", "x", "-1"))
		case 1:
			args = append(args, "fwmark", g.pick("0", "off", "0x10", "1234", "0xffffffff", "0x100000000", "x", ""))
		case 2:
			args = append(args, "private-key", file())
		default:
			args = append(args, "peer", g.key())
			for range g.r.IntN(4) {
				switch g.r.IntN(7) {
				case 0:
					args = append(args, "remove")
				case 1:
					args = append(args, "preshared-key", file())
				case 2:
					args = append(args, "endpoint", g.endpoint())
				case 3:
					args = append(args, "persistent-keepalive", g.pick("0", "off", "25", "65535", "65536", "x"))
				case 4:
					if g.bad() {
						args = append(args, g.pick("allowed-ips", "bogus", "peer"))
					} else {
						args = append(args, "allowed-ips", g.pick(g.ips(), "", "+"+g.ips(), "-"+g.ips()))
					}
				default:
					args = append(args, "allowed-ips", g.ips())
				}
			}
		}
	}
	if g.r.IntN(15) == 0 {
		args = append(args, g.pick("bogus", "peer", "listen-port"))
	}
	return args
}

// newerSetSyntax reports whether args use what wgd takes beyond wg
// 1.0.20210914 (docs/usage.md): +/- allowed-ips entries, which newer
// wireguard-tools added, or a port above 65535, which wg wraps and wgd
// refuses.
func newerSetSyntax(args []string) bool {
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "allowed-ips":
			for _, e := range strings.Split(stripSpace(args[i+1]), ",") {
				if strings.HasPrefix(e, "+") || strings.HasPrefix(e, "-") {
					return true
				}
			}
		case "listen-port":
			if args[i+1] == "65536" {
				return true
			}
		}
	}
	return false
}

// TestE2ESetRandomMatchesWg runs random `wg set` command lines through the
// real wg and `wgd set` against the same (fake) interface: the exit code,
// the messages and the UAPI transaction must be the same, except for the
// documented differences (newerSetSyntax), which are only counted.
func TestE2ESetRandomMatchesWg(t *testing.T) {
	f := newRandomWgFixture(t, "wgds", 15, 60)
	dir := t.TempDir()
	files := map[string]string{"missing": filepath.Join(dir, "missing"), "null": "/dev/null"}
	for k, v := range map[string]string{"key": f.g.keys[0] + "\n", "zero": strings.Repeat("A", 43) + "=\n", "bad": "not a key\n", "psk": f.g.keys[1]} {
		files[k] = filepath.Join(dir, k)
		if err := os.WriteFile(files[k], []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const runs = 300
	var accepted, diverged, newer int
	for range runs {
		args := f.g.setArgs(files)
		wrc, werr, wset, rc, errb, got := f.compare(t, append([]string{"set", f.name}, args...),
			func(e *wgEnv) int { return runSet(e, append([]string{f.name}, args...)) })
		if newerSetSyntax(args) {
			newer++
			continue
		}
		if rc != wrc || got != wset || errb != werr {
			diverged++
			if diverged <= 8 {
				t.Errorf("set %q:\nwg  rc %d %q\n    %q\nwgd rc %d %q\n    %q", args, wrc, werr, wset, rc, errb, got)
			}
		}
		if wrc == 0 {
			accepted++
		}
	}
	t.Logf("%d command lines: %d accepted by wg, %d with newer syntax (not compared), %d diverged", runs, accepted, newer, diverged)
	if accepted < runs/5 || accepted > runs*4/5 {
		t.Errorf("generator out of balance: wg accepted %d of %d", accepted, runs)
	}
}
