package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/wgdvpn/wgd/noise"
)

// Keys from the examples in wg(8); none of them protects anything.
const (
	testPriv  = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	testPub1  = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	testPub2  = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
	testPub3  = "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA="
	testPSK   = "/UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak="
	testNoPad = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg"
)

func mustPriv(t testing.TB, s string) noise.PrivateKey {
	t.Helper()
	k, err := noise.ParsePrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPub(t testing.TB, s string) noise.PublicKey {
	t.Helper()
	k, err := noise.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPSK(t testing.TB, s string) noise.PresharedKey {
	t.Helper()
	k, err := noise.ParsePresharedKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

// fullFile uses every key, in a messy but valid spelling.
const fullFile = `# a comment
[Interface]   # trailing comment
privatekey=` + testPriv + `
  ListenPort = 51820
FwMark = 0x1f
Address = 198.18.0.1/24, fd00::1/64
Address=198.18.1.1
DNS = 198.18.0.53,fd00::53 example.com, corp.example
MTU = 1420
Table = Off
PreUp = echo pre up %i
PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo "two  spaces"
PostUp = echo second
PreDown = echo pre down
PostDown = echo post down
SaveConfig = True

[Peer]
PublicKey = ` + testPub1 + `
Preshared Key = ` + testPSK + `
AllowedIPs = 198.18.0.2/32, fd00::2/128
AllowedIPs = 198.18.4.7/24
Endpoint = 198.18.0.9:51820
PersistentKeepalive = 25

[peer]
PUBLICKEY = ` + testPub2 + "\r" + `
Endpoint = [fd00::9]:51821
PersistentKeepalive = off

[Peer]
PublicKey = ` + testPub3 + `
Endpoint = vpn.example.com:443
AllowedIPs = 0.0.0.0/0, ::/0
`

func fullConfig(t testing.TB) *Config {
	return &Config{
		Interface: Interface{
			PrivateKey: mustPriv(t, testPriv),
			ListenPort: 51820,
			FwMark:     0x1f,
			Addresses:  pfx("198.18.0.1/24", "fd00::1/64", "198.18.1.1/32"),
			DNS:        []netip.Addr{netip.MustParseAddr("198.18.0.53"), netip.MustParseAddr("fd00::53")},
			DNSSearch:  []string{"example.com", "corp.example"},
			MTU:        1420,
			Table:      "off",
			PreUp:      []string{"echo pre up %i"},
			PostUp:     []string{`iptables -A FORWARD -i %i -j ACCEPT; echo "two  spaces"`, "echo second"},
			PreDown:    []string{"echo pre down"},
			PostDown:   []string{"echo post down"},
			SaveConfig: true,
		},
		Peers: []Peer{{
			PublicKey:           mustPub(t, testPub1),
			PresharedKey:        mustPSK(t, testPSK),
			AllowedIPs:          pfx("198.18.0.2/32", "fd00::2/128", "198.18.4.7/24"),
			Endpoint:            Endpoint{Host: "198.18.0.9", Port: 51820},
			PersistentKeepalive: 25,
		}, {
			PublicKey:     mustPub(t, testPub2),
			Endpoint:      Endpoint{Host: "fd00::9", Port: 51821},
			ZeroKeepalive: true, // "PersistentKeepalive = off"
		}, {
			PublicKey:  mustPub(t, testPub3),
			Endpoint:   Endpoint{Host: "vpn.example.com", Port: 443},
			AllowedIPs: pfx("0.0.0.0/0", "::/0"),
		}},
	}
}

func TestParseFull(t *testing.T) {
	got, err := Parse("wg0.conf", []byte(fullFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := fullConfig(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestParseGood covers the corners of the syntax one value at a time.
func TestParseGood(t *testing.T) {
	peer := "[Peer]\nPublicKey = " + testPub1 + "\n"
	tests := []struct {
		name, file string
		check      func(*Config) bool
	}{
		{"empty", "", func(c *Config) bool { return reflect.DeepEqual(c, &Config{}) }},
		{"only comments", "# x\n\n   # y\n", func(c *Config) bool { return reflect.DeepEqual(c, &Config{}) }},
		{"fwmark off", "[Interface]\nFwMark = off", func(c *Config) bool { return c.Interface.FwMark == 0 }},
		{"fwmark decimal", "[Interface]\nFwMark = 4294967295", func(c *Config) bool { return c.Interface.FwMark == 1<<32-1 }},
		{"fwmark hex", "[Interface]\nFwMark = 0xffffffff", func(c *Config) bool { return c.Interface.FwMark == 1<<32-1 }},
		{"fwmark 0", "[Interface]\nFwMark = 0", func(c *Config) bool { return c.Interface.FwMark == 0 }},
		{"port 0", "[Interface]\nListenPort = 0", func(c *Config) bool { return c.Interface.ListenPort == 0 }},
		{"port max", "[Interface]\nListenPort = 65535", func(c *Config) bool { return c.Interface.ListenPort == 65535 }},
		{"later value wins", "[Interface]\nListenPort = 1\nListenPort = 2", func(c *Config) bool { return c.Interface.ListenPort == 2 }},
		{"two interface sections merge", "[Interface]\nListenPort = 1\n" + peer + "[Interface]\nMTU = 1280\n",
			func(c *Config) bool {
				return c.Interface.ListenPort == 1 && c.Interface.MTU == 1280 && len(c.Peers) == 1
			}},
		{"blanks inside wg values", "[Interface]\nListen Port = 5 1820", func(c *Config) bool { return c.Interface.ListenPort == 51820 }},
		{"section header spacing", "[ Interface ]\nListenPort = 7", func(c *Config) bool { return c.Interface.ListenPort == 7 }},
		{"table auto", "[Interface]\nTable = AUTO", func(c *Config) bool { return c.Interface.Table == "auto" }},
		{"table number", "[Interface]\nTable = 1234", func(c *Config) bool { return c.Interface.Table == "1234" }},
		{"table zero", "[Interface]\nTable = 0", func(c *Config) bool { return c.Interface.Table == "0" }},
		{"table hex", "[Interface]\nTable = 0x4d2", func(c *Config) bool { return c.Interface.Table == "0x4d2" }},
		{"table octal", "[Interface]\nTable = 0777", func(c *Config) bool { return c.Interface.Table == "0777" }},
		{"table name", "[Interface]\nTable = main", func(c *Config) bool { return c.Interface.Table == "main" }},
		{"empty table and mtu", "[Interface]\nTable =\nMTU =", func(c *Config) bool { return c.Interface.Table == "" && c.Interface.MTU == 0 }},
		{"empty hook dropped", "[Interface]\nPostUp =", func(c *Config) bool { return c.Interface.PostUp == nil }},
		{"hook keeps equals", "[Interface]\nPostUp = a=b  c", func(c *Config) bool { return c.Interface.PostUp[0] == "a=b  c" }},
		{"savefalse", "[Interface]\nSaveConfig = false", func(c *Config) bool { return !c.Interface.SaveConfig }},
		{"dns search tilde", "[Interface]\nDNS = ~.", func(c *Config) bool { return c.Interface.DNSSearch[0] == "~." }},
		{"bare v6 endpoint", peer + "Endpoint = fd00::1:51820",
			func(c *Config) bool { return c.Peers[0].Endpoint == Endpoint{Host: "fd00::1", Port: 51820} }},
		{"zoned endpoint", peer + "Endpoint = [fe80::1%eth0]:1",
			func(c *Config) bool { return c.Peers[0].Endpoint == Endpoint{Host: "fe80::1%eth0", Port: 1} }},
		{"bracketed v4 endpoint", peer + "Endpoint = [198.18.0.1]:1",
			func(c *Config) bool { return c.Peers[0].Endpoint == Endpoint{Host: "198.18.0.1", Port: 1} }},
		{"allowed ips without length", peer + "AllowedIPs = 198.18.0.1, fd00::1",
			func(c *Config) bool {
				return reflect.DeepEqual(c.Peers[0].AllowedIPs, pfx("198.18.0.1/32", "fd00::1/128"))
			}},
		{"keepalive max", peer + "PersistentKeepalive = 65535", func(c *Config) bool { return c.Peers[0].PersistentKeepalive == 65535 }},
		{"no trailing newline", peer + "PersistentKeepalive = 5", func(c *Config) bool { return c.Peers[0].PersistentKeepalive == 5 }},
		{"zero public key is a key", "[Peer]\nPublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			func(c *Config) bool { return len(c.Peers) == 1 && c.Peers[0].PublicKey.IsZero() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected result %+v", c)
			}
		})
	}
}

// badCases is shared with the comparison against the real wg. wgRejects
// says whether `wg setconf` rejects the same file (only meaningful for
// files without wg-quick keys, and false where wg would have to resolve a
// host name to decide, since tests send no DNS queries).
var badCases = []struct {
	name, file, want string
	sentinel         error
	wgRejects        bool
}{
	{"bad prefix", "[Peer]\nPublicKey = " + testPub1 + "\nAllowedIPs = 198.18.0.0/15, 10.0.0.300/32\n",
		`wg0.conf:3: AllowedIPs: "10.0.0.300/32" is not an IP prefix`, ErrInvalidValue, true},
	{"prefix too long", "[Peer]\nPublicKey = " + testPub1 + "\nAllowedIPs = 198.18.0.0/33\n",
		`wg0.conf:3: AllowedIPs: "198.18.0.0/33" is not an IP prefix`, ErrInvalidValue, true},
	{"trailing comma", "[Peer]\nPublicKey = " + testPub1 + "\nAllowedIPs = 198.18.0.0/15,\n",
		`wg0.conf:3: AllowedIPs: "" is not an IP prefix`, ErrInvalidValue, true},
	{"empty allowed ips", "[Peer]\nPublicKey = " + testPub1 + "\nAllowedIPs =\n",
		`wg0.conf:3: AllowedIPs: empty value`, ErrInvalidValue, true},
	{"unknown key", "[Interface]\nListenPort = 1\nListenPrt = 2\n",
		`wg0.conf:3: ListenPrt: unknown key`, ErrUnknownKey, true},
	{"key outside section", "ListenPort = 1\n",
		`wg0.conf:1: ListenPort: key outside of a section (the file must start with [Interface] or [Peer])`, ErrUnknownKey, true},
	{"unknown section", "[Interface]\n[Peers]\n",
		`wg0.conf:2: [Peers]: unknown section (expected [Interface] or [Peer])`, ErrUnknownKey, true},
	{"no equals", "[Interface]\nListenPort 1\n",
		`wg0.conf:2: "ListenPort 1" is neither a [Section] header nor Key = Value`, ErrSyntax, true},
	{"peer key in interface", "[Interface]\nPublicKey = " + testPub1 + "\n",
		`wg0.conf:2: PublicKey: only valid in [Peer]`, ErrUnknownKey, true},
	{"interface key in peer", "[Peer]\nPublicKey = " + testPub1 + "\nListenPort = 1\n",
		`wg0.conf:3: ListenPort: only valid in [Interface]`, ErrUnknownKey, true},
	{"quick key in peer", "[Peer]\nPublicKey = " + testPub1 + "\nAddress = 198.18.0.1/32\n",
		`wg0.conf:3: Address: only valid in [Interface]`, ErrUnknownKey, true},
	{"short public key", "[Peer]\nPublicKey = " + testNoPad + "\n",
		`wg0.conf:2: PublicKey: "` + testNoPad + `" is not a valid key: a key is 44 characters of base64 ending in '='`, ErrInvalidValue, true},
	{"bad base64 public key", "[Peer]\nPublicKey = " + strings.Repeat("!", 43) + "=\n",
		`wg0.conf:2: PublicKey: "` + strings.Repeat("!", 43) + `=" is not a valid key: not valid base64`, ErrInvalidValue, true},
	{"non-canonical base64", "[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=\n",
		`wg0.conf:2: PublicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=" is not a valid key: not valid base64`, ErrInvalidValue, true},
	{"bad private key hides value", "[Interface]\nPrivateKey = " + testPriv[:40] + "=\n",
		`wg0.conf:2: PrivateKey: invalid key: a key is 44 characters of base64 ending in '='`, ErrInvalidValue, true},
	{"bad psk hides value", "[Peer]\nPublicKey = " + testPub1 + "\nPresharedKey = " + testPSK[:43] + "\n",
		`wg0.conf:3: PresharedKey: invalid key: a key is 44 characters of base64 ending in '='`, ErrInvalidValue, true},
	{"duplicate peer", "[Peer]\nPublicKey = " + testPub1 + "\n[Peer]\nPublicKey = " + testPub2 + "\n[Peer]\n# again\nPublicKey = " + testPub1 + "\n",
		`wg0.conf:7: PublicKey: "` + testPub1 + `" is already the key of the peer at line 2`, ErrDuplicatePeer, false},
	{"peer without key", "[Peer]\nPublicKey = " + testPub1 + "\n\n[Peer]\nAllowedIPs = 198.18.0.0/15\n",
		`wg0.conf:4: [Peer]: peer has no PublicKey`, ErrMissingPublicKey, true},
	{"port too big", "[Interface]\nListenPort = 65536\n",
		`wg0.conf:2: ListenPort: "65536" is not a port number (0-65535)`, ErrInvalidValue, false}, // glibc's getaddrinfo wraps the port to 16 bits and wg accepts it,
	{"port negative", "[Interface]\nListenPort = -1\n",
		`wg0.conf:2: ListenPort: "-1" is not a port number (0-65535)`, ErrInvalidValue, true},
	{"empty port", "[Interface]\nListenPort =\n",
		`wg0.conf:2: ListenPort: empty value`, ErrInvalidValue, true},
	{"fwmark too big", "[Interface]\nFwMark = 0x100000000\n",
		`wg0.conf:2: FwMark: "0x100000000" is neither off nor a number 0-0xffffffff`, ErrInvalidValue, true},
	{"fwmark upper X", "[Interface]\nFwMark = 0X10\n",
		`wg0.conf:2: FwMark: "0X10" is neither off nor a number 0-0xffffffff`, ErrInvalidValue, true},
	{"fwmark sign", "[Interface]\nFwMark = +1\n",
		`wg0.conf:2: FwMark: "+1" is neither off nor a number 0-0xffffffff`, ErrInvalidValue, true},
	{"keepalive too big", "[Peer]\nPublicKey = " + testPub1 + "\nPersistentKeepalive = 65536\n",
		`wg0.conf:3: PersistentKeepalive: "65536" is neither off nor a number 0-65535`, ErrInvalidValue, true},
	{"endpoint no port", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = 198.18.0.1\n",
		`wg0.conf:3: Endpoint: "198.18.0.1" has no port (want host:port or [IPv6]:port)`, ErrInvalidValue, true},
	{"endpoint empty port", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = 198.18.0.1:\n",
		`wg0.conf:3: Endpoint: "198.18.0.1:" has an invalid port (1-65535)`, ErrInvalidValue, true},
	{"endpoint big port", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = 198.18.0.1:65536\n",
		`wg0.conf:3: Endpoint: "198.18.0.1:65536" has an invalid port (1-65535)`, ErrInvalidValue, false}, // glibc's getaddrinfo wraps the port to 16 bits and wg accepts it,
	{"endpoint open bracket", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = [fd00::1:5\n",
		`wg0.conf:3: Endpoint: "[fd00::1:5" has no closing bracket`, ErrInvalidValue, true},
	{"endpoint bracket no port", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = [fd00::1]\n",
		`wg0.conf:3: Endpoint: "[fd00::1]" has no port (want host:port or [IPv6]:port)`, ErrInvalidValue, true},
	{"endpoint bad host", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = bad/host:5\n",
		`wg0.conf:3: Endpoint: "bad/host:5" is not an IP address or host name with a port`, ErrInvalidValue, false},
	{"address bad", "[Interface]\nAddress = 198.18.0.1/24, 198.18.0.256/24\n",
		`wg0.conf:2: Address: "198.18.0.256/24" is not an IP prefix`, ErrInvalidValue, false},
	{"dns bad ip", "[Interface]\nDNS = 198.18.0.1, 1.2.3\n",
		`wg0.conf:2: DNS: "1.2.3" is not an IP address`, ErrInvalidValue, false},
	{"dns bad search", "[Interface]\nDNS = exa$mple.com\n",
		`wg0.conf:2: DNS: "exa$mple.com" is neither an IP address nor a search domain`, ErrInvalidValue, false},
	{"mtu bad", "[Interface]\nMTU = 14x\n",
		`wg0.conf:2: MTU: "14x" is not an MTU (68-65535)`, ErrInvalidValue, false},
	{"mtu small", "[Interface]\nMTU = 0\n",
		`wg0.conf:2: MTU: "0" is not an MTU (68-65535)`, ErrInvalidValue, false},
	{"table bad", "[Interface]\nTable = my table\n",
		`wg0.conf:2: Table: "my table" is neither off, auto, a table number nor a table name`, ErrInvalidValue, false},
	{"table number too big", "[Interface]\nTable = 4294967296\n",
		`wg0.conf:2: Table: "4294967296" is not a table number (0-4294967295, decimal, 0x hex or 0 octal)`, ErrInvalidValue, false},
	{"table bad octal", "[Interface]\nTable = 08\n",
		`wg0.conf:2: Table: "08" is not a table number (0-4294967295, decimal, 0x hex or 0 octal)`, ErrInvalidValue, false},
	{"table go-only syntax", "[Interface]\nTable = 1_000\n",
		`wg0.conf:2: Table: "1_000" is not a table number (0-4294967295, decimal, 0x hex or 0 octal)`, ErrInvalidValue, false},
	{"saveconfig bad", "[Interface]\nSaveConfig = yes\n",
		`wg0.conf:2: SaveConfig: "yes" is neither true nor false`, ErrInvalidValue, false},
	{"control characters quoted", "[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = a\x1b[2Jb:1\n",
		`wg0.conf:3: Endpoint: "a\x1b[2Jb:1" is not an IP address or host name with a port`, ErrInvalidValue, false},
}

func TestParseBad(t *testing.T) {
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("wg0.conf", []byte(tt.file))
			if err == nil {
				t.Fatalf("no error, got %+v", c)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got  %s\n want %s", err, tt.want)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %v is not %v", err, tt.sentinel)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "wg0.conf" || pe.Line == 0 {
				t.Fatalf("not a complete *ParseError: %#v", err)
			}
		})
	}
}

// TestSecretsNotInErrors checks that no part of a secret key value reaches
// an error message, whatever is wrong with it.
func TestSecretsNotInErrors(t *testing.T) {
	for _, v := range []string{testPriv[:43], testPriv + "A", "!" + testPriv[1:], testPriv[:20]} {
		for _, f := range []string{"[Interface]\nPrivateKey = " + v, "[Peer]\nPublicKey = " + testPub1 + "\nPresharedKey = " + v} {
			_, err := Parse("x", []byte(f))
			if err == nil {
				t.Fatalf("%q accepted", f)
			}
			if strings.Contains(err.Error(), v[:10]) || err.(*ParseError).Value != "" {
				t.Fatalf("secret leaked in %q", err)
			}
		}
	}
}

// TestKeysNotInMalformedLines: a key on a line that is not Key = Value,
// in a misspelt key or on a section header line, is not echoed either.
func TestKeysNotInMalformedLines(t *testing.T) {
	hexKey := strings.Repeat("a1", 32)
	for _, f := range []string{
		"[Interface]\nPrivateKey " + testPriv,
		"[Interface]\nPrivateKey: " + testPriv + " = x",
		"[Interface] PrivateKey = " + testPriv,
		"[Interface]\nPrivatKey" + testPriv,
		"[Interface]\n" + hexKey,
		"[Peer]\nPresharedKey " + testPriv,
		// A key pasted into the wrong field.
		"[Peer]\nPublicKey = " + testPub1 + "\nAllowedIPs = " + testPriv,
		"[Peer]\nPublicKey = " + testPub1 + "\nEndpoint = " + testPriv,
		"[Interface]\nAddress = " + testPriv,
		"[Interface]\nDNS = " + testPriv,
		"[Interface]\nListenPort = " + hexKey,
	} {
		_, err := Parse("x", []byte(f))
		if err == nil {
			t.Fatalf("%q accepted", f)
		}
		if strings.Contains(err.Error(), testPriv[:20]) || strings.Contains(err.Error(), hexKey[:20]) {
			t.Fatalf("key echoed in %q", err)
		}
		if !strings.Contains(err.Error(), "(key hidden)") {
			t.Fatalf("%q: %v does not say a key was hidden", f, err)
		}
	}
	// Short tokens are shown as they are.
	if _, err := Parse("x", []byte("[Interface]\nListenPrt = 1")); err == nil || !strings.Contains(err.Error(), "ListenPrt") {
		t.Fatalf("misspelt key not named: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wg9.conf")
	if err := os.WriteFile(path, []byte("[Interface]\nMTU = 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:2: MTU: "9" is not an MTU (68-65535)`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestMaskedAllowedIPs(t *testing.T) {
	p := Peer{AllowedIPs: pfx("198.18.4.7/24", "fd00::1:2/64", "198.18.0.1/32")}
	want := pfx("198.18.4.0/24", "fd00::/64", "198.18.0.1/32")
	if got := p.MaskedAllowedIPs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if p.AllowedIPs[0].String() != "198.18.4.7/24" {
		t.Fatal("MaskedAllowedIPs changed the peer")
	}
}

func TestEndpointAddrPort(t *testing.T) {
	if ap, ok := (Endpoint{Host: "fd00::1", Port: 5}).AddrPort(); !ok || ap.String() != "[fd00::1]:5" {
		t.Fatalf("got %v %v", ap, ok)
	}
	if _, ok := (Endpoint{Host: "vpn.example.com", Port: 5}).AddrPort(); ok {
		t.Fatal("a host name is not an address")
	}
}

// TestReadFileBounded: a config path that leads to an endless file (a
// symlink to /dev/zero or /dev/urandom) is refused in the first read
// instead of filling memory up to the bound; an endless text stream at the
// bound; a file that holds a NUL byte (UTF-16 text) as not text.
func TestReadFileBounded(t *testing.T) {
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		_, err := readFileMax(dev, 1<<30)
		if !errors.Is(err, ErrNotText) || !strings.Contains(err.Error(), dev) {
			t.Fatalf("%s: err = %v, want ErrNotText naming the file", dev, err)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		defer w.Close()
		line := []byte(strings.Repeat("# endless\n", 100))
		for range 2000 { // 2 MB, then the reader has refused it
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}()
	if _, err := readFileMax(fmt.Sprintf("/proc/self/fd/%d", r.Fd()), 1<<20); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("an endless pipe: err = %v, want ErrFileTooLarge", err)
	}
	dir := t.TempDir()
	utf16 := filepath.Join(dir, "utf16.conf")
	if err := os.WriteFile(utf16, []byte("\xff\xfe[\x00I\x00]\x00\n\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readFileMax(utf16, 1<<20); !errors.Is(err, ErrNotText) {
		t.Fatalf("UTF-16 text: err = %v, want ErrNotText", err)
	}
	path := filepath.Join(dir, "wg0.conf")
	if err := os.WriteFile(path, []byte("[Interface]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readFileMax(path, 12); err != nil || string(data) != "[Interface]\n" {
		t.Fatalf("a file of exactly the bound: %q, %v", data, err)
	}
	if _, err := readFileMax(path, 11); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("a file one byte past the bound: err = %v", err)
	}
	big := filepath.Join(dir, "big.conf")
	text := strings.Repeat("# a comment line\n", 10000)
	if err := os.WriteFile(big, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readFileMax(big, 1<<20); err != nil || string(data) != text {
		t.Fatalf("a 170 KB file: %d bytes, %v", len(data), err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.WriteString(text)
			f.Close()
		}
	}()
	if data, err := readFileMax(fifo, 1<<20); err != nil || string(data) != text {
		t.Fatalf("a fifo: %d bytes, %v", len(data), err)
	}
}
