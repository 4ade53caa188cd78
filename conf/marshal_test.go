package conf

import (
	"reflect"
	"testing"
)

const fullCanonical = `[Interface]
PrivateKey = ` + testPriv + `
ListenPort = 51820
FwMark = 0x1f
Address = 198.18.0.1/24, fd00::1/64, 198.18.1.1/32
DNS = 198.18.0.53, fd00::53, example.com, corp.example
MTU = 1420
Table = off
PreUp = echo pre up %i
PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo "two  spaces"
PostUp = echo second
PreDown = echo pre down
PostDown = echo post down
SaveConfig = true

[Peer]
PublicKey = ` + testPub1 + `
PresharedKey = ` + testPSK + `
AllowedIPs = 198.18.0.2/32, fd00::2/128, 198.18.4.7/24
Endpoint = 198.18.0.9:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ` + testPub2 + `
Endpoint = [fd00::9]:51821
PersistentKeepalive = off

[Peer]
PublicKey = ` + testPub3 + `
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = vpn.example.com:443
`

const fullStripped = `[Interface]
PrivateKey = ` + testPriv + `
ListenPort = 51820
FwMark = 0x1f

[Peer]
PublicKey = ` + testPub1 + `
PresharedKey = ` + testPSK + `
AllowedIPs = 198.18.0.2/32, fd00::2/128, 198.18.4.7/24
Endpoint = 198.18.0.9:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ` + testPub2 + `
Endpoint = [fd00::9]:51821
PersistentKeepalive = off

[Peer]
PublicKey = ` + testPub3 + `
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = vpn.example.com:443
`

func TestMarshalGolden(t *testing.T) {
	c := fullConfig(t)
	if got := string(c.Marshal()); got != fullCanonical {
		t.Fatalf("Marshal:\n%s\nwant:\n%s", got, fullCanonical)
	}
	back, err := Parse("back", c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip:\n%+v\n%+v", back, c)
	}
}

func TestStrip(t *testing.T) {
	c := fullConfig(t)
	s := Strip(c)
	if got := string(s.Marshal()); got != fullStripped {
		t.Fatalf("Strip:\n%s\nwant:\n%s", got, fullStripped)
	}
	s.Peers[0].AllowedIPs[0] = s.Peers[2].AllowedIPs[0] // must not alias c
	if !reflect.DeepEqual(c, fullConfig(t)) {
		t.Fatal("Strip shares memory with its input")
	}
}

func TestMarshalEmpty(t *testing.T) {
	if got := string((&Config{}).Marshal()); got != "[Interface]\n" {
		t.Fatalf("got %q", got)
	}
}
