package main

import (
	"fmt"
	"io"
	"strings"
)

// renderShowconf writes `wg showconf IFACE`: the running state in the file
// format `wg setconf` reads back. Unlike `show`, it prints secrets and keeps
// the daemon's peer order.
func renderShowconf(d deviceState) string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	if d.Info.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", d.Info.ListenPort)
	}
	if d.Info.FwMark != 0 {
		fmt.Fprintf(&b, "FwMark = 0x%x\n", d.Info.FwMark)
	}
	if !d.Info.PrivateKey.IsZero() {
		b.WriteString("PrivateKey = " + d.Info.PrivateKey.String() + "\n")
	}
	b.WriteString("\n")
	for i := range d.Peers {
		p := &d.Peers[i]
		b.WriteString("[Peer]\nPublicKey = " + p.PublicKey.String() + "\n")
		if !p.PresharedKey.IsZero() {
			b.WriteString("PresharedKey = " + p.PresharedKey.String() + "\n")
		}
		if len(p.AllowedIPs) > 0 {
			b.WriteString("AllowedIPs = " + joinPrefixes(p.AllowedIPs, ", ") + "\n")
		}
		if p.Endpoint.IsValid() {
			b.WriteString("Endpoint = " + endpointText(p.Endpoint) + "\n")
		}
		if p.PersistentKeepalive != 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", p.PersistentKeepalive)
		}
		if i+1 < len(d.Peers) {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// runShowconf is `wg showconf IFACE` with wg's messages and exit status.
func runShowconf(e *wgEnv, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.Stderr, "Usage: %s showconf <interface>\n", e.Prog)
		return 1
	}
	d, err := e.get(args[0])
	if err != nil {
		fmt.Fprintf(e.Stderr, "Unable to access interface: %s\n", errnoText(err))
		return 1
	}
	if _, err := io.WriteString(e.Stdout, renderShowconf(d)); err != nil {
		return 1
	}
	return 0
}
