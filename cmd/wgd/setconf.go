package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/wgdvpn/wgd/conf"
	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/noise"
)

// confMode is which of wg's three file commands is running.
type confMode int

const (
	modeSet  confMode = iota // setconf: the file replaces the device state
	modeAdd                  // addconf: the file is applied on top
	modeSync                 // syncconf: like setconf, without disturbing unchanged peers
)

var confModeNames = [...]string{modeSet: "setconf", modeAdd: "addconf", modeSync: "syncconf"}

// runSetconfMode returns the command function for one of setconf, addconf
// and syncconf.
func runSetconfMode(mode confMode) func(*wgEnv, []string) int {
	return func(e *wgEnv, args []string) int { return runSetconf(e, mode, args) }
}

// runSetconf is `wg setconf|addconf|syncconf IFACE FILE`.
func runSetconf(e *wgEnv, mode confMode, args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(e.Stderr, "Usage: %s %s <interface> <configuration filename>\n", e.Prog, confModeNames[mode])
		return 1
	}
	data, err := conf.ReadFile(args[1])
	if err != nil {
		fmt.Fprintf(e.Stderr, "fopen: %s\n", strerror(unwrapPathErr(err)))
		return 1
	}
	c, err := conf.Parse(args[1], data)
	if err != nil {
		fmt.Fprintf(e.Stderr, "%v\nConfiguration parsing error\n", err)
		return 1
	}
	if line, n := quickOnlyLine(data); line != "" {
		// wg's refusal, then what to do about it: the likeliest mistake
		// is a wg-quick file (`wgd setconf wg0 /etc/wireguard/wg0.conf`).
		key, _, _ := strings.Cut(line, "=")
		fmt.Fprintf(e.Stderr, "Line unrecognized: `%s'\n%s:%d: %s is a wg-quick key, which setconf does not take: give it the output of `wgd strip %s`\nConfiguration parsing error\n",
			line, args[1], n, key, args[1])
		return 1
	}
	cfg, err := confToDevice(e, c, mode != modeAdd)
	if err != nil {
		fmt.Fprintf(e.Stderr, "Configuration parsing error\n")
		return 1
	}
	if mode == modeSync && len(cfg.Peers) > 0 {
		_, current, err := e.Backend.Get(args[0])
		if err != nil {
			fmt.Fprintf(e.Stderr, "Unable to retrieve current interface configuration: %s\n", errnoText(err))
			return 1
		}
		syncDiff(cfg, current)
	}
	if err := e.Backend.Set(args[0], cfg); err != nil {
		fmt.Fprintf(e.Stderr, "Unable to modify interface: %s\n", errnoText(err))
		return 1
	}
	return 0
}

// quickOnlyLine returns the first line of an [Interface] section whose
// key only wg-quick reads, as wg prints it when setconf refuses the file
// (from the first '#' on cut, every white space character removed), or ""
// if there is none, and its line number. `wgd strip` removes those keys.
func quickOnlyLine(data []byte) (string, int) {
	inInterface := false
	n := 0
	for raw := range strings.Lines(string(data)) {
		n++
		if i := strings.IndexByte(raw, '#'); i >= 0 {
			raw = raw[:i]
		}
		line := strings.Map(func(r rune) rune {
			if strings.ContainsRune(" \t\n\v\f\r", r) {
				return -1
			}
			return r
		}, raw)
		switch {
		case line == "":
		case line[0] == '[':
			inInterface = strings.EqualFold(line, "[Interface]")
		case inInterface:
			if key, _, _ := strings.Cut(line, "="); quickOnlyKey(key) {
				return line, n
			}
		}
	}
	return "", 0
}

// quickOnlyKey reports whether key (any case) is one of the [Interface]
// keys only wg-quick reads.
func quickOnlyKey(key string) bool {
	switch strings.ToLower(key) {
	case "address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown", "saveconfig":
		return true
	}
	return false
}

// confToDevice builds the transaction wg sends for a file. With replace
// (setconf, syncconf) the device keys are always sent, zero meaning "remove"
// or "random port", and every peer not in the file goes; without it
// (addconf) only what the file gives is sent, zero values included. Each
// [Peer] replaces its allowed IPs. Endpoint host names are resolved here.
func confToDevice(e *wgEnv, c *conf.Config, replace bool) (*device.Config, error) {
	cfg := &device.Config{ReplacePeers: replace}
	ifc := c.Interface
	if replace || ifc.ZeroPrivateKey || !ifc.PrivateKey.IsZero() {
		cfg.PrivateKey = &ifc.PrivateKey
	}
	if replace || ifc.ZeroListenPort || ifc.ListenPort != 0 {
		cfg.ListenPort = &ifc.ListenPort
	}
	if replace || ifc.ZeroFwMark || ifc.FwMark != 0 {
		cfg.FwMark = &ifc.FwMark
	}
	warnHostBits(e, c.Peers)
	cfg.Peers = make([]device.PeerConfig, 0, len(c.Peers))
	for i := range c.Peers {
		p, err := peerToDevice(e, &c.Peers[i])
		if err != nil {
			return nil, err
		}
		cfg.Peers = append(cfg.Peers, p)
	}
	return cfg, nil
}

// peerToDevice converts one [Peer]. A PersistentKeepalive the file gives is
// sent even when it is 0 or off, as wg does, so that addconf turns an
// existing peer's keepalive off.
func peerToDevice(e *wgEnv, p *conf.Peer) (device.PeerConfig, error) {
	pc := device.PeerConfig{PublicKey: p.PublicKey, ReplaceAllowedIPs: true}
	if !p.PresharedKey.IsZero() || p.ZeroPresharedKey {
		psk := p.PresharedKey
		pc.PresharedKey = &psk
	}
	if p.PersistentKeepalive != 0 || p.ZeroKeepalive {
		ka := p.PersistentKeepalive
		pc.PersistentKeepalive = &ka
	}
	if !p.Endpoint.IsZero() {
		ap, ok := p.Endpoint.AddrPort()
		if !ok || ap.Addr().Zone() != "" { // a zone must name a link (resolveEndpoint checks)
			var err error
			if ap, err = resolveEndpoint(e, p.Endpoint.String()); err != nil {
				return pc, err
			}
		}
		pc.Endpoint = &ap
	}
	pc.AllowedIPs = make([]device.AllowedIPChange, len(p.AllowedIPs))
	for i, a := range p.AllowedIPs {
		pc.AllowedIPs[i] = device.AllowedIPChange{Prefix: a}
	}
	return pc, nil
}

// warnHostBits prints wg's warning for every allowed IP with bits set past
// its prefix length (the device masks them), as wg does while it reads a
// file and wg-quick shows during up.
func warnHostBits(e *wgEnv, peers []conf.Peer) {
	for i := range peers {
		for _, a := range peers[i].AllowedIPs {
			if a != a.Masked() {
				fmt.Fprintf(e.Stderr, "Warning: AllowedIP has nonzero host part: %s\n", a)
			}
		}
	}
}

// syncDiff turns a setconf transaction into wg's syncconf: instead of
// replacing every peer, remove those that are running but not in the file
// and, for peers in both, clear a preshared key or keepalive the file no
// longer sets. Peers that are in the file keep their sessions.
func syncDiff(cfg *device.Config, current []device.PeerInfo) {
	if len(cfg.Peers) == 0 || len(current) == 0 {
		return
	}
	cfg.ReplacePeers = false
	inFile := make(map[noise.PublicKey]int, len(cfg.Peers))
	for i := range cfg.Peers {
		inFile[cfg.Peers[i].PublicKey] = i
	}
	var removals []device.PeerConfig
	for i := range current {
		cur := &current[i]
		j, ok := inFile[cur.PublicKey]
		if !ok {
			removals = append(removals, device.PeerConfig{PublicKey: cur.PublicKey, Remove: true})
			continue
		}
		fp := &cfg.Peers[j]
		if !cur.PresharedKey.IsZero() && fp.PresharedKey == nil {
			fp.PresharedKey = new(noise.PresharedKey)
		}
		if cur.PersistentKeepalive != 0 && fp.PersistentKeepalive == nil {
			fp.PersistentKeepalive = new(uint16)
		}
	}
	// wg sends the removals first, in descending key order (it prepends them
	// while walking the peers sorted by key).
	slices.SortFunc(removals, func(a, b device.PeerConfig) int {
		return bytes.Compare(b.PublicKey[:], a.PublicKey[:])
	})
	cfg.Peers = append(removals, cfg.Peers...)
}
