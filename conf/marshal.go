package conf

import (
	"net/netip"
	"strconv"
	"strings"
)

// Marshal writes c in canonical form: an [Interface] section, then one
// [Peer] section per peer, each key once in a fixed order, lists joined
// with ", ", zero values left out. Parse(Marshal(c)) equals c for every c
// that Parse returned. For a Config built by hand, the caller must keep
// values representable: a hook must not contain '#' or a line break, and a
// search domain must not look like an address.
//
// The output contains the private key in clear text; write it with mode
// 0600.
func (c *Config) Marshal() []byte {
	var b strings.Builder
	writeInterface(&b, &c.Interface)
	for i := range c.Peers {
		b.WriteByte('\n')
		writePeer(&b, &c.Peers[i])
	}
	return []byte(b.String())
}

func writeInterface(b *strings.Builder, ifc *Interface) {
	b.WriteString("[Interface]\n")
	if !ifc.PrivateKey.IsZero() || ifc.ZeroPrivateKey {
		writeKey(b, keyPrivateKey, ifc.PrivateKey.String())
	}
	if ifc.ListenPort != 0 || ifc.ZeroListenPort {
		writeKey(b, keyListenPort, strconv.Itoa(int(ifc.ListenPort)))
	}
	switch {
	case ifc.FwMark != 0:
		writeKey(b, keyFwMark, "0x"+strconv.FormatUint(uint64(ifc.FwMark), 16))
	case ifc.ZeroFwMark:
		writeKey(b, keyFwMark, "off")
	}
	if len(ifc.Addresses) > 0 {
		writeKey(b, keyAddress, joinPrefixes(ifc.Addresses))
	}
	if len(ifc.DNS) > 0 || len(ifc.DNSSearch) > 0 {
		words := make([]string, 0, len(ifc.DNS)+len(ifc.DNSSearch))
		for _, a := range ifc.DNS {
			words = append(words, a.String())
		}
		words = append(words, ifc.DNSSearch...)
		writeKey(b, keyDNS, strings.Join(words, ", "))
	}
	if ifc.MTU != 0 {
		writeKey(b, keyMTU, strconv.Itoa(ifc.MTU))
	}
	if ifc.Table != "" {
		writeKey(b, keyTable, ifc.Table)
	}
	writeHooks(b, keyPreUp, ifc.PreUp)
	writeHooks(b, keyPostUp, ifc.PostUp)
	writeHooks(b, keyPreDown, ifc.PreDown)
	writeHooks(b, keyPostDown, ifc.PostDown)
	if ifc.SaveConfig {
		writeKey(b, keySaveConfig, "true")
	}
}

// writePeer writes the keys in the order `wg showconf` uses.
func writePeer(b *strings.Builder, p *Peer) {
	b.WriteString("[Peer]\n")
	writeKey(b, keyPublicKey, p.PublicKey.String())
	if !p.PresharedKey.IsZero() || p.ZeroPresharedKey {
		writeKey(b, keyPresharedKey, p.PresharedKey.String())
	}
	if len(p.AllowedIPs) > 0 {
		writeKey(b, keyAllowedIPs, joinPrefixes(p.AllowedIPs))
	}
	if !p.Endpoint.IsZero() {
		writeKey(b, keyEndpoint, p.Endpoint.String())
	}
	switch {
	case p.PersistentKeepalive != 0:
		writeKey(b, keyPersistentKeepalive, strconv.Itoa(int(p.PersistentKeepalive)))
	case p.ZeroKeepalive:
		writeKey(b, keyPersistentKeepalive, "off")
	}
}

func writeKey(b *strings.Builder, key, value string) {
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(value)
	b.WriteByte('\n')
}

func writeHooks(b *strings.Builder, key string, hooks []string) {
	for _, h := range hooks {
		writeKey(b, key, h)
	}
}

func joinPrefixes(ps []netip.Prefix) string {
	words := make([]string, len(ps))
	for i, p := range ps {
		words[i] = p.String()
	}
	return strings.Join(words, ", ")
}
