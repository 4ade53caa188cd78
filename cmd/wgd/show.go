package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/ipc"
)

const showUsage = "Usage: %s show { <interface> | all | interfaces } [public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump]\n"

// errBadField is returned for a `show` field name wg does not know.
var errBadField = errors.New("invalid parameter")

// deviceState is one interface as a get request returned it.
type deviceState struct {
	Name  string
	Info  device.Info
	Peers []device.PeerInfo
}

// prettyOptions carry what the human output depends on besides the state.
type prettyOptions struct {
	Now      time.Time
	HideKeys bool
}

// renderPretty writes `wg show IFACE` for one interface, with color codes
// (the caller strips them when color is off). Peers are sorted like wg's
// sort_peers: most recent handshake first, never-handshaken peers last.
func renderPretty(w *strings.Builder, d deviceState, o prettyOptions) {
	w.WriteString(ansiReset)
	fmt.Fprintf(w, ansiGreen+ansiBold+"interface"+ansiReset+": "+ansiGreen+"%s"+ansiReset+"\n", d.Name)
	if !d.Info.PrivateKey.IsZero() {
		prettyLine(w, "public key", d.Info.PrivateKey.PublicKey().String())
		prettyLine(w, "private key", maskedKey(d.Info.PrivateKey.String(), o.HideKeys))
	}
	if d.Info.ListenPort != 0 {
		prettyLine(w, "listening port", strconv.Itoa(int(d.Info.ListenPort)))
	}
	if d.Info.FwMark != 0 {
		prettyLine(w, "fwmark", fmt.Sprintf("0x%x", d.Info.FwMark))
	}
	if len(d.Peers) == 0 {
		return
	}
	w.WriteString("\n")
	peers := sortedPeers(d.Peers)
	for i, p := range peers {
		renderPrettyPeer(w, p, o)
		if i+1 < len(peers) {
			w.WriteString("\n")
		}
	}
}

// renderPrettyPeer writes one peer block of the human output.
func renderPrettyPeer(w *strings.Builder, p *device.PeerInfo, o prettyOptions) {
	fmt.Fprintf(w, ansiYellow+ansiBold+"peer"+ansiReset+": "+ansiYellow+"%s"+ansiReset+"\n", p.PublicKey.String())
	if !p.PresharedKey.IsZero() {
		prettyLine(w, "preshared key", maskedKey(p.PresharedKey.String(), o.HideKeys))
	}
	if p.Endpoint.IsValid() {
		prettyLine(w, "endpoint", endpointText(p.Endpoint))
	}
	w.WriteString("  " + ansiBold + "allowed ips" + ansiReset + ": ")
	if len(p.AllowedIPs) == 0 {
		w.WriteString("(none)\n")
	}
	for i, a := range p.AllowedIPs {
		sep := ", "
		if i+1 == len(p.AllowedIPs) {
			sep = "\n"
		}
		w.WriteString(ipText(a.Addr()) + ansiCyan + "/" + ansiReset + strconv.Itoa(a.Bits()) + sep)
	}
	if handshakeUnix(p.LastHandshake) != 0 {
		prettyLine(w, "latest handshake", ago(p.LastHandshake, o.Now))
	}
	if p.RxBytes != 0 || p.TxBytes != 0 {
		prettyLine(w, "transfer", formatBytes(p.RxBytes)+" received, "+formatBytes(p.TxBytes)+" sent")
	}
	if p.PersistentKeepalive != 0 {
		prettyLine(w, "persistent keepalive", every(p.PersistentKeepalive))
	}
}

func prettyLine(w *strings.Builder, label, value string) {
	w.WriteString("  " + ansiBold + label + ansiReset + ": " + value + "\n")
}

// sortedPeers orders peers for display without touching the caller's slice.
// The sort is stable, so peers with equal handshake times keep the daemon's
// order, as glibc's merge-sort qsort does for wg.
func sortedPeers(peers []device.PeerInfo) []*device.PeerInfo {
	out := make([]*device.PeerInfo, len(peers))
	for i := range peers {
		out[i] = &peers[i]
	}
	slices.SortStableFunc(out, func(a, b *device.PeerInfo) int {
		az, bz := a.LastHandshake.IsZero(), b.LastHandshake.IsZero()
		switch {
		case az && bz:
			return 0
		case az:
			return 1
		case bz:
			return -1
		}
		return b.LastHandshake.Compare(a.LastHandshake)
	})
	return out
}

// renderField writes `wg show IFACE FIELD` (or, with withName, one
// interface's part of `wg show all FIELD`). It fails with errBadField for an
// unknown field name, before writing anything.
func renderField(w io.Writer, d deviceState, field string, withName bool) error {
	prefix := ""
	if withName {
		prefix = d.Name + "\t"
	}
	var b strings.Builder
	switch field {
	case "public-key":
		b.WriteString(prefix + publicKeyText(d.Info.PrivateKey) + "\n")
	case "private-key":
		b.WriteString(prefix + privateKeyText(d.Info.PrivateKey) + "\n")
	case "listen-port":
		b.WriteString(prefix + strconv.Itoa(int(d.Info.ListenPort)) + "\n")
	case "fwmark":
		b.WriteString(prefix + fwmarkText(d.Info.FwMark) + "\n")
	case "dump":
		b.WriteString(prefix + dumpInterfaceLine(d.Info))
		for i := range d.Peers {
			b.WriteString(prefix + dumpPeerLine(&d.Peers[i]))
		}
	default:
		peerField, ok := peerFields[field]
		if !ok {
			return errBadField
		}
		for i := range d.Peers {
			p := &d.Peers[i]
			b.WriteString(prefix + p.PublicKey.String() + peerField(p) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// peerFields are the per-peer columns of `wg show IFACE FIELD`; each returns
// what follows the public key on the peer's line.
var peerFields = map[string]func(p *device.PeerInfo) string{
	"peers":          func(*device.PeerInfo) string { return "" },
	"preshared-keys": func(p *device.PeerInfo) string { return "\t" + pskText(p.PresharedKey) },
	"endpoints":      func(p *device.PeerInfo) string { return "\t" + endpointText(p.Endpoint) },
	"allowed-ips":    func(p *device.PeerInfo) string { return "\t" + joinPrefixes(p.AllowedIPs, " ") },
	"latest-handshakes": func(p *device.PeerInfo) string {
		return "\t" + strconv.FormatInt(handshakeUnix(p.LastHandshake), 10)
	},
	"transfer": func(p *device.PeerInfo) string {
		return "\t" + strconv.FormatUint(p.RxBytes, 10) + "\t" + strconv.FormatUint(p.TxBytes, 10)
	},
	"persistent-keepalive": func(p *device.PeerInfo) string { return "\t" + keepaliveText(p.PersistentKeepalive) },
}

// runShow is `wg show` with wg's arguments, output and exit status, plus
// --json. It returns the exit status.
func runShow(e *wgEnv, args []string) int {
	jsonOut := false
	rest := args[:0:0]
	for _, a := range args {
		if a == "--json" {
			jsonOut = true
			continue
		}
		rest = append(rest, a)
	}
	if jsonOut {
		return runShowJSON(e, rest)
	}
	if len(rest) > 2 {
		fmt.Fprintf(e.Stderr, showUsage, e.Prog)
		return 1
	}
	switch {
	case len(rest) == 0 || rest[0] == "all":
		if len(rest) == 2 {
			return showAll(e, rest[1], true)
		}
		return showAll(e, "", false)
	case rest[0] == "interfaces":
		return showInterfaces(e, rest)
	case len(rest) == 1 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help"):
		fmt.Fprintf(e.Stderr, showUsage, e.Prog)
		return 0
	}
	d, err := e.get(rest[0])
	if err != nil {
		fmt.Fprintf(e.Stderr, "Unable to access interface: %s\n", errnoText(err))
		return 1
	}
	if len(rest) == 2 {
		return e.field(d, rest[1], false)
	}
	e.pretty(d, false)
	return 0
}

// showAll is `wg show [all] [FIELD]`. Like wg it exits 0 when there are no
// interfaces, 1 when every interface failed, and stops at a bad field.
func showAll(e *wgEnv, field string, hasField bool) int {
	names, err := e.Backend.Interfaces()
	if err != nil {
		fmt.Fprintf(e.Stderr, "Unable to list interfaces: %s\n", errnoText(err))
		return 1
	}
	ret := 0
	if len(names) > 0 {
		ret = 1
	}
	for i, name := range names {
		d, err := e.get(name)
		if err != nil {
			fmt.Fprintf(e.Stderr, "Unable to access interface %s: %s\n", name, errnoText(err))
			continue
		}
		if hasField {
			if e.field(d, field, true) != 0 {
				return 1
			}
		} else {
			e.pretty(d, i+1 < len(names))
		}
		ret = 0
	}
	return ret
}

// showInterfaces is `wg show interfaces`: the names on one line.
func showInterfaces(e *wgEnv, args []string) int {
	if len(args) > 1 {
		fmt.Fprintf(e.Stderr, showUsage, e.Prog)
		return 1
	}
	names, err := e.Backend.Interfaces()
	if err != nil {
		fmt.Fprintf(e.Stderr, "Unable to list interfaces: %s\n", errnoText(err))
		return 1
	}
	if len(names) > 0 {
		fmt.Fprintf(e.Stdout, "%s\n", strings.Join(names, " "))
	}
	return 0
}

// field prints one field of d, or wg's complaint about an unknown field.
func (e *wgEnv) field(d deviceState, field string, withName bool) int {
	if err := renderField(e.Stdout, d, field, withName); err != nil {
		if errors.Is(err, errBadField) {
			fmt.Fprintf(e.Stderr, "Invalid parameter: `%s'\n", field)
			fmt.Fprintf(e.Stderr, showUsage, e.Prog)
		}
		return 1
	}
	return 0
}

// pretty prints the human form of d, colored or not, and a blank line after
// it when another interface follows.
func (e *wgEnv) pretty(d deviceState, more bool) {
	var b strings.Builder
	renderPretty(&b, d, prettyOptions{Now: e.Now(), HideKeys: hideKeys(e.Getenv("WG_HIDE_KEYS"))})
	if more {
		b.WriteString("\n")
	}
	out := b.String()
	if !colorMode(e.Getenv("WG_COLOR_MODE"), e.StdoutTTY) {
		out = stripANSI(out)
	}
	io.WriteString(e.Stdout, out)
}

// get fetches one interface's state from the backend.
func (e *wgEnv) get(name string) (deviceState, error) {
	info, peers, err := e.Backend.Get(name)
	if err != nil {
		return deviceState{}, err
	}
	return deviceState{Name: name, Info: info, Peers: peers}, nil
}

// jsonInterface is one interface in `wgd show --json`. Secrets appear only
// when WG_HIDE_KEYS=never, as in the human output; the has_ fields say
// whether they are set either way.
type jsonInterface struct {
	Name          string        `json:"name"`
	PublicKey     string        `json:"public_key,omitempty"`
	HasPrivateKey bool          `json:"has_private_key"`
	PrivateKey    string        `json:"private_key,omitempty"`
	ListenPort    uint16        `json:"listen_port"`
	FwMark        uint32        `json:"fwmark"`
	Peers         []jsonPeer    `json:"peers"`
	Counters      *ipc.Counters `json:"counters"` // drops by reason and UAPI refusals; null for a daemon without the wgd_counters UAPI extension (wireguard-go)
}

// jsonPeer is one peer in `wgd show --json`. Times are RFC 3339 in UTC and
// Unix seconds; a peer that never completed a handshake has a null time and
// 0 seconds.
type jsonPeer struct {
	PublicKey           string   `json:"public_key"`
	HasPresharedKey     bool     `json:"has_preshared_key"`
	PresharedKey        string   `json:"preshared_key,omitempty"`
	Endpoint            *string  `json:"endpoint"`
	AllowedIPs          []string `json:"allowed_ips"`
	LatestHandshake     *string  `json:"latest_handshake"`
	LatestHandshakeUnix int64    `json:"latest_handshake_unix"`
	RxBytes             uint64   `json:"rx_bytes"`
	TxBytes             uint64   `json:"tx_bytes"`
	PersistentKeepalive uint16   `json:"persistent_keepalive"`
	ProtocolVersion     int      `json:"protocol_version,omitempty"`
}

// toJSON builds the JSON form of d; counters may be nil.
func toJSON(d deviceState, counters *ipc.Counters, hide bool) jsonInterface {
	j := jsonInterface{Name: d.Name, ListenPort: d.Info.ListenPort, FwMark: d.Info.FwMark,
		Peers: make([]jsonPeer, 0, len(d.Peers)), Counters: counters}
	if !d.Info.PrivateKey.IsZero() {
		j.HasPrivateKey = true
		j.PublicKey = d.Info.PrivateKey.PublicKey().String()
		if !hide {
			j.PrivateKey = d.Info.PrivateKey.String()
		}
	}
	for i := range d.Peers {
		j.Peers = append(j.Peers, peerJSON(&d.Peers[i], hide))
	}
	return j
}

func peerJSON(p *device.PeerInfo, hide bool) jsonPeer {
	jp := jsonPeer{PublicKey: p.PublicKey.String(), AllowedIPs: make([]string, 0, len(p.AllowedIPs)),
		RxBytes: p.RxBytes, TxBytes: p.TxBytes, PersistentKeepalive: p.PersistentKeepalive,
		ProtocolVersion: p.ProtocolVersion, LatestHandshakeUnix: handshakeUnix(p.LastHandshake)}
	if !p.PresharedKey.IsZero() {
		jp.HasPresharedKey = true
		if !hide {
			jp.PresharedKey = p.PresharedKey.String()
		}
	}
	if p.Endpoint.IsValid() {
		s := endpointText(p.Endpoint)
		jp.Endpoint = &s
	}
	for _, a := range p.AllowedIPs {
		jp.AllowedIPs = append(jp.AllowedIPs, prefixText(a))
	}
	if jp.LatestHandshakeUnix != 0 {
		s := p.LastHandshake.UTC().Format(time.RFC3339Nano)
		jp.LatestHandshake = &s
	}
	return jp
}

// runShowJSON is `wgd show --json [IFACE|all]`: one object for a named
// interface, an array of them for all interfaces.
func runShowJSON(e *wgEnv, args []string) int {
	if len(args) > 1 || (len(args) == 1 && args[0] == "interfaces") {
		fmt.Fprintf(e.Stderr, "Usage: %s show --json [<interface> | all]\n", e.Prog)
		return 1
	}
	hide := hideKeys(e.Getenv("WG_HIDE_KEYS"))
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	if len(args) == 1 && args[0] != "all" {
		d, err := e.get(args[0])
		if err != nil {
			fmt.Fprintf(e.Stderr, "Unable to access interface: %s\n", errnoText(err))
			return 1
		}
		if enc.Encode(toJSON(d, e.counters(d.Name), hide)) != nil {
			return 1
		}
		return 0
	}
	names, err := e.Backend.Interfaces()
	if err != nil {
		fmt.Fprintf(e.Stderr, "Unable to list interfaces: %s\n", errnoText(err))
		return 1
	}
	all := make([]jsonInterface, 0, len(names))
	ret := 0
	for _, name := range names {
		d, err := e.get(name)
		if err != nil {
			fmt.Fprintf(e.Stderr, "Unable to access interface %s: %s\n", name, errnoText(err))
			ret = 1
			continue
		}
		all = append(all, toJSON(d, e.counters(name), hide))
	}
	if enc.Encode(all) != nil {
		return 1
	}
	return ret
}
