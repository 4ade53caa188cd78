package ipc

import (
	"bufio"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

var (
	hexA = strings.Repeat("a1", 32)
	hexB = strings.Repeat("b2", 32)
	hexZ = strings.Repeat("00", 32)
)

func parseString(t testing.TB, s string, lim Limits) (*device.Config, error) {
	t.Helper()
	return ParseSet(bufio.NewReader(strings.NewReader(s)), lim)
}

func ptr[T any](v T) *T { return &v }

func pubKey(t testing.TB, h string) noise.PublicKey {
	t.Helper()
	k, err := noise.ParsePublicKeyHex(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseSetGolden(t *testing.T) {
	a, b := pubKey(t, hexA), pubKey(t, hexB)
	privA, _ := noise.ParsePrivateKeyHex(hexA)
	privA.Clamp()
	pskB, _ := noise.ParsePresharedKeyHex(hexB)
	ep4 := netip.MustParseAddrPort("198.18.0.1:51820")
	ep6 := netip.MustParseAddrPort("[fd00::1]:51820")
	pfx := func(s string) device.AllowedIPChange { return device.AllowedIPChange{Prefix: netip.MustParsePrefix(s)} }
	rm := func(s string) device.AllowedIPChange {
		return device.AllowedIPChange{Prefix: netip.MustParsePrefix(s), Remove: true}
	}
	tests := []struct {
		name, in string
		want     *device.Config
	}{
		{"empty", "\n", &device.Config{}},
		{"device", "private_key=" + hexA + "\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n\n",
			&device.Config{PrivateKey: &privA, ListenPort: ptr(uint16(51820)), FwMark: ptr(uint32(0)), ReplacePeers: true}},
		{"zero private key is not clamped", "private_key=" + hexZ + "\n\n", &device.Config{PrivateKey: &noise.PrivateKey{}}},
		{"crlf", "listen_port=1\r\n\r\n", &device.Config{ListenPort: ptr(uint16(1))}},
		{"peers", "public_key=" + hexA + "\nendpoint=198.18.0.1:51820\nallowed_ip=10.0.0.1/24\nallowed_ip=-fd00::/64\n" +
			"public_key=" + hexB + "\nupdate_only=true\npreshared_key=" + hexB + "\nendpoint=[fd00::1]:51820\npersistent_keepalive_interval=25\nprotocol_version=1\n\n",
			&device.Config{Peers: []device.PeerConfig{
				{PublicKey: a, Endpoint: &ep4, AllowedIPs: []device.AllowedIPChange{pfx("10.0.0.0/24"), rm("fd00::/64")}},
				{PublicKey: b, UpdateOnly: true, PresharedKey: &pskB, Endpoint: &ep6, PersistentKeepalive: ptr(uint16(25)), ProtocolVersion: 1},
			}}},
		{"remove drops the rest of the section", "public_key=" + hexA + "\nendpoint=198.18.0.1:1\nremove=true\nendpoint=198.18.0.1:1\nallowed_ip=10.1.0.0/16\n" +
			"public_key=" + hexB + "\nallowed_ip=10.2.0.0/16\n\n",
			&device.Config{Peers: []device.PeerConfig{{PublicKey: a, Remove: true}, {PublicKey: b, AllowedIPs: []device.AllowedIPChange{pfx("10.2.0.0/16")}}}}},
		// After allowed_ip lines a flag starts a sequel entry: the allowed
		// IPs before it still move to the peer first, as wireguard-go
		// applies them line by line.
		{"remove after allowed IPs is a sequel", "public_key=" + hexA + "\nallowed_ip=10.0.0.0/8\nremove=true\nendpoint=198.18.0.1:1\nallowed_ip=10.1.0.0/16\n" +
			"public_key=" + hexB + "\nallowed_ip=10.2.0.0/16\n\n",
			&device.Config{Peers: []device.PeerConfig{{PublicKey: a, AllowedIPs: []device.AllowedIPChange{pfx("10.0.0.0/8")}},
				{PublicKey: a, Sequel: true, Remove: true}, {PublicKey: b, AllowedIPs: []device.AllowedIPChange{pfx("10.2.0.0/16")}}}}},
		{"replace_allowed_ips after allowed IPs is a sequel", "public_key=" + hexA + "\nallowed_ip=10.0.0.0/8\nreplace_allowed_ips=true\nallowed_ip=10.1.0.0/16\n\n",
			&device.Config{Peers: []device.PeerConfig{{PublicKey: a, AllowedIPs: []device.AllowedIPChange{pfx("10.0.0.0/8")}},
				{PublicKey: a, Sequel: true, ReplaceAllowedIPs: true, AllowedIPs: []device.AllowedIPChange{pfx("10.1.0.0/16")}}}}},
		{"replace_allowed_ips after other lines is not", "public_key=" + hexA + "\nendpoint=198.18.0.1:1\nreplace_allowed_ips=true\nallowed_ip=10.1.0.0/16\n\n",
			&device.Config{Peers: []device.PeerConfig{{PublicKey: a, Endpoint: ptr(netip.MustParseAddrPort("198.18.0.1:1")), ReplaceAllowedIPs: true,
				AllowedIPs: []device.AllowedIPChange{pfx("10.1.0.0/16")}}}}},
		{"value with equals", "public_key=" + hexA + "\nprotocol_version=1\n\n",
			&device.Config{Peers: []device.PeerConfig{{PublicKey: a, ProtocolVersion: 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseString(t, tt.in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestParseSetErrnos checks every rejection against the errno wireguard-go
// answers for the same line.
func TestParseSetErrnos(t *testing.T) {
	peer := "public_key=" + hexA + "\n"
	tests := []struct {
		in    string
		errno unix.Errno
		is    error
	}{
		{"listen_port\n\n", unix.EPROTO, ErrNoEquals},
		{"bogus=1\n\n", unix.EINVAL, ErrUnknownKey},
		{"=1\n\n", unix.EINVAL, ErrUnknownKey},
		{"private_key=abc\n\n", unix.EINVAL, ErrInvalidValue},
		{"private_key=" + strings.Repeat("zz", 32) + "\n\n", unix.EINVAL, ErrInvalidValue},
		{"listen_port=65536\n\n", unix.EINVAL, ErrInvalidValue},
		{"listen_port=-1\n\n", unix.EINVAL, ErrInvalidValue},
		{"listen_port=+1\n\n", unix.EINVAL, ErrInvalidValue},
		{"fwmark=4294967296\n\n", unix.EINVAL, ErrInvalidValue},
		{"fwmark=0x10\n\n", unix.EINVAL, ErrInvalidValue},
		{"replace_peers=false\n\n", unix.EINVAL, ErrInvalidValue},
		{"public_key=" + hexA[:62] + "\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "listen_port=1\n\n", unix.EINVAL, ErrUnknownKey},
		{peer + "update_only=1\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "remove=false\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "replace_allowed_ips=yes\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "preshared_key=00\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "endpoint=example.com:51820\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "endpoint=fd00::1:51820\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "endpoint=198.18.0.1\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "persistent_keepalive_interval=65536\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "allowed_ip=10.0.0.0/33\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "allowed_ip=10.0.0.0\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "allowed_ip=--10.0.0.0/8\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "protocol_version=2\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "remove=true\nallowed_ip=bad\n\n", unix.EINVAL, ErrInvalidValue},
		{peer + "endpoint=198.18.0.1:1\n", unix.EPROTO, ErrTruncated},
		{"listen_port=1", unix.EPROTO, ErrTruncated},
	}
	for _, tt := range tests {
		cfg, err := parseString(t, tt.in, Limits{})
		var e *Error
		if !errors.As(err, &e) || e.Errno != tt.errno || !errors.Is(err, tt.is) || cfg != nil {
			t.Errorf("%q: got %v, %v; want errno %d, %v", tt.in, cfg, err, tt.errno, tt.is)
		}
	}
}

func TestParseSetErrorNamesLineAndHidesSecrets(t *testing.T) {
	secret := strings.Repeat("q", 64)
	_, err := parseString(t, "listen_port=1\nprivate_key="+secret+"\n\n", Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 {
		t.Fatalf("got %v, want an *Error on line 2", err)
	}
	if strings.Contains(err.Error(), "qq") {
		t.Errorf("error %q echoes the private key", err)
	}
	// A key sent in the wrong place, as another key's value or as a key
	// name, is not echoed either (the error reaches the default-level log).
	key := hexA
	for _, in := range []string{"listen_port=" + key + "\n\n", key + "=1\n\n", "public_key=" + hexA + "\n" + key + "=1\n\n",
		"public_key=" + hexA + "\nendpoint=" + key + "\n\n", "fwmark=" + key[:50] + "\n\n"} {
		_, err := parseString(t, in, Limits{})
		if err == nil || strings.Contains(err.Error(), key[:40]) {
			t.Errorf("%q: error %v echoes the key", in, err)
		}
	}
}

// TestParseSetDrainsAfterError checks that a bad request is read to its
// blank line, so the next operation on the stream is found.
func TestParseSetDrainsAfterError(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("bogus=1\nlisten_port=1\n" + strings.Repeat("x", 100) + "\n\nget=1\n"))
	if _, err := ParseSet(r, Limits{MaxLineBytes: 50}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want the first error (unknown key)", err)
	}
	rest, _ := r.ReadString('\n')
	if rest != "get=1\n" {
		t.Fatalf("stream continues at %q", rest)
	}
}

func TestParseSetLimits(t *testing.T) {
	peers := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("public_key=" + strings.Repeat("0", 62) + string(rune('a'+i%6)) + "0\nallowed_ip=10.0.0.0/8\n")
		}
		return b.String() + "\n"
	}
	tests := []struct {
		name  string
		in    string
		lim   Limits
		errno unix.Errno
		is    error
		fatal bool
	}{
		{"long line", "listen_port=" + strings.Repeat("1", 70000) + "\n\n", Limits{}, unix.EIO, ErrLineTooLong, false},
		// Up to wireguard-go's 64 KiB a long line is judged by its content.
		{"long but within the bound", "listen_port=" + strings.Repeat("1", 5000) + "\n\n", Limits{}, unix.EINVAL, ErrInvalidValue, false},
		{"long line beyond reader buffer", "x=" + strings.Repeat("1", 1<<20) + "\n\n", Limits{MaxLineBytes: 8192}, unix.EIO, ErrLineTooLong, false},
		{"request bytes", peers(10), Limits{MaxRequestBytes: 500}, unix.EMSGSIZE, ErrRequestTooLarge, true},
		{"request bytes while draining", "bogus=1\n" + strings.Repeat("y=1\n", 1000) + "\n", Limits{MaxRequestBytes: 2000}, unix.EMSGSIZE, ErrRequestTooLarge, true},
		{"peers", peers(5), Limits{MaxPeers: 4}, unix.EMSGSIZE, ErrRequestTooLarge, false},
		{"allowed ips", peers(5), Limits{MaxAllowedIPs: 4}, unix.EMSGSIZE, ErrRequestTooLarge, false},
	}
	for _, tt := range tests {
		_, err := parseString(t, tt.in, tt.lim)
		var e *Error
		if !errors.As(err, &e) || e.Errno != tt.errno || !errors.Is(err, tt.is) || e.fatal != tt.fatal {
			t.Errorf("%s: got %v; want errno %d, %v, fatal %v", tt.name, err, tt.errno, tt.is, tt.fatal)
		}
	}
	if _, err := parseString(t, peers(4), Limits{MaxPeers: 4, MaxAllowedIPs: 4}); err != nil {
		t.Errorf("at the limits: %v", err)
	}
	// A line of exactly MaxLineBytes (newline included) is accepted.
	line := "listen_port=" + strings.Repeat("0", 20-len("listen_port=")-2) + "1\n"
	if _, err := parseString(t, line+"\n", Limits{MaxLineBytes: 20}); err != nil || len(line) != 20 {
		t.Errorf("line of exactly the bound: %v", err)
	}
}
