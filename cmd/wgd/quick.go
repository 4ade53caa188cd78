package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/conf"
	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/tun/netcfg"
)

// The wg-quick side of wgd: which file and interface a command means, what
// `up` applied (kept in a state file so that `down` and `reload` work even
// after the config file changed or the daemon died), and SaveConfig.

// stateDir holds what `up` applied, one JSON file per interface.
const stateDir = "/run/wgd"

// quickTarget is the config file and interface a `wgd up/down/reload`
// argument names.
type quickTarget struct {
	iface, path string
	// named: the argument was an interface name, not a path.
	named bool
}

// resolveTarget follows wg-quick: a bare interface name means
// /etc/wireguard/NAME.conf; anything else is a path whose base name, less
// ".conf", is the interface name. The path is made absolute with its
// symbolic links resolved (wg-quick's readlink -f), so that SaveConfig
// writes through a link to its target and a later `down` from another
// directory finds the same file.
func resolveTarget(arg string) (quickTarget, error) {
	if path := configPath(arg, configDir); path != arg {
		return quickTarget{iface: arg, path: absConfigPath(path), named: true}, nil
	}
	base := filepath.Base(arg)
	name, ok := strings.CutSuffix(base, ".conf")
	if !ok || !ifaceName.MatchString(name) {
		return quickTarget{}, fmt.Errorf("the config file must be a valid interface name, followed by .conf: `%s'", arg)
	}
	return quickTarget{iface: name, path: absConfigPath(arg)}, nil
}

// absConfigPath is readlink -f: absolute, symbolic links resolved (as far
// as they resolve).
func absConfigPath(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if p, err := filepath.Abs(path); err == nil {
		path = p
	}
	return path
}

// loadConfig reads the file, warning (as wg-quick does) when others may
// read it. The text comes back too, for the hooks' WG_CONFIG.
func loadConfig(t quickTarget, stderr io.Writer) (*conf.Config, []byte, error) {
	if err := missingConfig(t.path); err != nil {
		return nil, nil, err
	}
	warnWorldAccessible(t.path, stderr)
	return conf.LoadText(t.path)
}

// missingConfig is wg-quick's error for a config file that does not exist,
// or nil.
func missingConfig(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("`%s' does not exist", path)
	}
	return nil
}

// warnWorldAccessible prints wg-quick's warning when others may reach the
// file: a permission bit for "other" that the file and its directory both
// grant.
func warnWorldAccessible(path string, stderr io.Writer) {
	fst, err := os.Stat(path)
	if err != nil {
		return
	}
	dst, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return
	}
	if fst.Mode().Perm()&dst.Mode().Perm()&0o007 != 0 {
		fmt.Fprintf(stderr, "Warning: `%s' is world accessible\n", path)
	}
}

// scriptVars are wg-quick's script variables for hooks (${ADDRESSES[@]},
// $WG_CONFIG, ...) from a file's text, parsed as c into s.
func scriptVars(data []byte, c *conf.Config, s netcfg.Settings) *netcfg.ScriptVars {
	return &netcfg.ScriptVars{Settings: s, WGConfig: wgQuickConfig(data), SaveConfig: c.Interface.SaveConfig, Program: programName()}
}

// programName is wg-quick's PROGRAM, the name it was run by.
func programName() string { return filepath.Base(os.Args[0]) }

// wgQuickConfig is wg-quick's WG_CONFIG for a file: each line as bash's
// `read -r` gives it (blanks around it gone) and a newline, except the
// wg-quick keys of [Interface] sections, matched as wg-quick matches them
// (the key before '=' and any '#', blanks around it trimmed, any case).
func wgQuickConfig(data []byte) string {
	var b strings.Builder
	inInterface := false
	for raw := range strings.Lines(string(data)) {
		line := strings.Trim(strings.TrimSuffix(raw, "\n"), " \t")
		stripped, _, _ := strings.Cut(line, "#")
		key, _, _ := strings.Cut(stripped, "=")
		key = strings.TrimSpace(key)
		if strings.HasPrefix(key, "[") {
			inInterface = strings.EqualFold(key, "[Interface]")
		}
		if inInterface && quickOnlyKey(key) {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// settingsFor turns a config and its resolved transaction into what netcfg
// needs.
func settingsFor(iface string, c *conf.Config, cfg *device.Config) netcfg.Settings {
	ifc := &c.Interface
	s := netcfg.Settings{
		Interface: iface,
		Addresses: ifc.Addresses,
		MTU:       ifc.MTU,
		Table:     ifc.Table,
		FwMark:    ifc.FwMark,
		DNS:       ifc.DNS,
		DNSSearch: ifc.DNSSearch,
		PreUp:     ifc.PreUp,
		PostUp:    ifc.PostUp,
		PreDown:   ifc.PreDown,
		PostDown:  ifc.PostDown,
	}
	for i := range c.Peers {
		s.AllowedIPs = append(s.AllowedIPs, c.Peers[i].MaskedAllowedIPs()...)
	}
	for i := range cfg.Peers {
		if ep := cfg.Peers[i].Endpoint; ep != nil {
			s.Endpoints = append(s.Endpoints, ep.Addr())
		}
	}
	return s
}

// quickState is what `up` applied, for `down` and `reload`.
type quickState struct {
	ConfigPath string          `json:"config_path"`
	Settings   netcfg.Settings `json:"settings"`
	SaveConfig bool            `json:"save_config"`
	// Link names the interface the record belongs to: its index and its
	// network namespace (the inode of /proc/self/ns/net). A link of the
	// same name made later, or elsewhere, is another interface, and a
	// reload must not apply this record to it. 0 in records of older wgd.
	Ifindex  int    `json:"ifindex,omitempty"`
	NetnsIno uint64 `json:"netns_ino,omitempty"`
}

// linkIdentity returns the index of iface in this network namespace and
// the namespace's inode; zeros when either is unknown.
func linkIdentity(iface string) (int, uint64) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return 0, 0
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return 0, 0
	}
	return l.Attrs().Index, st.Ino
}

// errStaleState is a record left by an earlier interface of the same name
// (its daemon died without `wgd down`), or by one in another namespace.
var errStaleState = errors.New("the record of `wgd up` belongs to an earlier or another interface of that name")

// readLiveState is readState for an interface that must be the one the
// record was written for.
func readLiveState(iface string) (*quickState, error) {
	st, err := readState(iface)
	if err != nil {
		return nil, err
	}
	if st.Ifindex != 0 {
		if idx, ino := linkIdentity(iface); idx != st.Ifindex || ino != st.NetnsIno {
			return nil, errStaleState
		}
	}
	return st, nil
}

func statePath(iface string) string { return filepath.Join(stateDir, iface+".json") }

func writeState(iface string, st *quickState) error {
	st.Ifindex, st.NetnsIno = linkIdentity(iface)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(statePath(iface), data, 0o600)
}

func readState(iface string) (*quickState, error) {
	data, err := os.ReadFile(statePath(iface))
	if err != nil {
		return nil, err
	}
	var st quickState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", statePath(iface), err)
	}
	return &st, nil
}

func removeState(iface string) { _ = os.Remove(statePath(iface)) }

// writeFileAtomic writes data to a temporary file next to path, syncs it and
// renames it over path, so that a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// saveConfig writes the running configuration back to the file, as
// wg-quick's SaveConfig does: the interface's current addresses, the DNS,
// MTU, Table and hooks of the file, and the peers as the daemon has them.
//
// s supplies the wg-quick keys (DNS, MTU, Table, hooks): those of the file as
// it is now, when it can be read, as wg-quick parses it again at down.
func saveConfig(path, iface string, s netcfg.Settings, saveFlag bool, info device.Info, peers []device.PeerInfo) error {
	c := conf.Config{Interface: conf.Interface{
		PrivateKey: info.PrivateKey,
		ListenPort: info.ListenPort,
		FwMark:     info.FwMark,
		DNS:        s.DNS,
		DNSSearch:  s.DNSSearch,
		Table:      s.Table,
		PreUp:      s.PreUp,
		PostUp:     s.PostUp,
		PreDown:    s.PreDown,
		PostDown:   s.PostDown,
		SaveConfig: saveFlag, // the file's: wg-quick save writes the line only if set
	}}
	if link, err := netlink.LinkByName(iface); err == nil {
		if addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL); err == nil {
			for _, a := range addrs {
				if p, ok := addrPrefix(a); ok {
					c.Interface.Addresses = append(c.Interface.Addresses, p)
				}
			}
		}
		if s.MTU != 0 {
			c.Interface.MTU = link.Attrs().MTU
		}
	}
	for _, p := range peers {
		cp := conf.Peer{
			PublicKey:           p.PublicKey,
			PresharedKey:        p.PresharedKey,
			AllowedIPs:          p.AllowedIPs,
			PersistentKeepalive: p.PersistentKeepalive,
		}
		if p.Endpoint.IsValid() {
			cp.Endpoint = conf.Endpoint{Host: p.Endpoint.Addr().String(), Port: p.Endpoint.Port()}
		}
		c.Peers = append(c.Peers, cp)
	}
	return writeFileAtomic(path, c.Marshal(), 0o600)
}

func addrPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil || a.IP.IsLinkLocalUnicast() {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := a.Mask.Size()
	if bits == 32 {
		ip = ip.Unmap() // net.IP may hold an IPv4 address in 16 bytes
	}
	return netip.PrefixFrom(ip, ones), true
}

// errNotUp is returned by reload for an interface `wgd up` did not start.
var errNotUp = errors.New("not brought up by wgd up")

// errNeedNetAdmin is returned by up, down and reload without CAP_NET_ADMIN,
// before they change anything, instead of a "permission denied" from
// whichever step would have failed first.
var errNeedNetAdmin = errors.New("needs CAP_NET_ADMIN: run it as root")

// checkNetAdmin reports errNeedNetAdmin when the process lacks the
// capability. If the capabilities cannot be read it lets the steps try.
func checkNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil
	}
	if data[0].Effective&(1<<unix.CAP_NET_ADMIN) == 0 {
		return errNeedNetAdmin
	}
	return nil
}

// lockInterface serializes up, down and reload of one interface across
// processes with an flock on /run/wgd/IFACE.lock: a down racing an up
// removed the firewall tables up had just added, or the socket of the
// daemon it had just started. It waits up to 30 s for another holder, and
// goes on without a lock where /run/wgd cannot be written (the record is
// best effort there too). The returned func releases it and removes the
// file, so that no lock files pile up; calling it again does nothing.
//
// Removing the file is safe because a locker checks, once it holds the
// flock, that the path still names the file it locked: one that was
// removed (and maybe created anew) by the holder before is let go and the
// path opened again.
func lockInterface(iface string) (func(), error) {
	none := func() {}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return none, nil
	}
	path := filepath.Join(stateDir, iface+".lock")
	for deadline := time.Now().Add(30 * time.Second); ; {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return none, nil
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			if !lockedPathIs(f, path) {
				f.Close()
				continue
			}
			var once sync.Once
			return func() {
				once.Do(func() {
					os.Remove(path)
					f.Close()
				})
			}, nil
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: another wgd up, down or reload of it is still running: %w", iface, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedPathIs reports whether path still names the open file f.
func lockedPathIs(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}
