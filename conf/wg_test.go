package conf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wgParses runs the real `wg setconf` on file against an interface that does
// not exist. wg parses the whole file before it contacts the interface, so
// "Configuration parsing error" (a bad line) or "Invalid configuration" (a
// peer without a key) means wg rejected the text and any other
// failure means it accepted it. No file given here has a host name
// endpoint: wg would resolve it, and tests send no DNS queries.
func wgParses(t *testing.T, wg, file string) (bool, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.conf")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	iface := fmt.Sprintf("wgdc%d", os.Getpid()%100000)
	cmd := exec.Command(wg, "setconf", iface, path)
	cmd.Env = append(os.Environ(), "WG_ENDPOINT_RESOLUTION_RETRIES=0")
	out, _ := cmd.CombinedOutput()
	rejected := strings.Contains(string(out), "Configuration parsing error") ||
		strings.Contains(string(out), "Invalid configuration")
	return !rejected, string(out)
}

func findWg(t *testing.T) string {
	wg, err := exec.LookPath("wg")
	if err != nil {
		t.Skip("wg (wireguard-tools) is not installed: cannot compare with it")
	}
	return wg
}

// TestWgAgreesOnBadFiles checks that the real wg also rejects the bad files
// that contain only keys wg reads (wgRejects in the table).
func TestWgAgreesOnBadFiles(t *testing.T) {
	wg := findWg(t)
	for _, tt := range badCases {
		if !tt.wgRejects {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			if ok, out := wgParses(t, wg, tt.file); ok {
				t.Fatalf("wg accepted what we reject (%s): %s", tt.want, out)
			}
		})
	}
}

// TestWgAcceptsOurOutput checks that wg reads what Strip and Marshal write,
// and that it accepts the syntax corners that Parse accepts.
func TestWgAcceptsOurOutput(t *testing.T) {
	wg := findWg(t)
	c := fullConfig(t)
	c.Peers = c.Peers[:2] // the third peer has a host name endpoint
	peer := "[Peer]\nPublicKey = " + testPub1 + "\n"
	files := map[string]string{
		"stripped":          string(Strip(c).Marshal()),
		"messy":             "[ interface ]\nlisten port = 5 1820 # x\nFWMARK=off\n" + peer + "allowedips = 198.18.0.1 , fd00::/8\nAllowedIPs = ::ffff:198.18.0.1/128\n",
		"bare v6 endpoint":  peer + "Endpoint = fd00::1:51820\n",
		"bracketed v4":      peer + "Endpoint = [198.18.0.1]:1\n",
		"keepalive off":     peer + "PersistentKeepalive = OFF\n",
		"fwmark hex":        "[Interface]\nFwMark = 0xffffffff\n",
		"crlf":              "[Interface]\r\nListenPort = 1\r\n" + strings.ReplaceAll(peer, "\n", "\r\n"),
		"two interface":     "[Interface]\nListenPort = 1\n" + peer + "[Interface]\nFwMark = 1\n",
		"zero public key":   "[Peer]\nPublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"comment only line": "#[Interface]\n",
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("x", []byte(file)); err != nil {
				t.Fatalf("we reject: %v", err)
			}
			if ok, out := wgParses(t, wg, file); !ok {
				t.Fatalf("wg rejects:\n%s\n%s", file, out)
			}
		})
	}
}
