package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wgdvpn/wgd/noise"
)

// Canonical key names, as wg(8) and wg-quick(8) document them. Keys match
// case-insensitively; errors and Marshal use these spellings.
const (
	keyPrivateKey          = "PrivateKey"
	keyListenPort          = "ListenPort"
	keyFwMark              = "FwMark"
	keyAddress             = "Address"
	keyDNS                 = "DNS"
	keyMTU                 = "MTU"
	keyTable               = "Table"
	keyPreUp               = "PreUp"
	keyPostUp              = "PostUp"
	keyPreDown             = "PreDown"
	keyPostDown            = "PostDown"
	keySaveConfig          = "SaveConfig"
	keyPublicKey           = "PublicKey"
	keyPresharedKey        = "PresharedKey"
	keyAllowedIPs          = "AllowedIPs"
	keyEndpoint            = "Endpoint"
	keyPersistentKeepalive = "PersistentKeepalive"
)

type section int

const (
	sectionNone section = iota
	sectionInterface
	sectionPeer
)

// parser carries the state of one Parse call.
type parser struct {
	name string
	n    int // the line being read, 1-based
	cfg  Config
	sect section
	// peerLine[i] is the line of peer i's [Peer] header and keyLine[i] the
	// line of its PublicKey (0 when it has none), for errors found at the end.
	peerLine []int
	keyLine  []int
}

// Load reads and parses the file at path. Errors name the file by path.
func Load(path string) (*Config, error) {
	c, _, err := LoadText(path)
	return c, err
}

// LoadText is Load that also returns the file's text.
func LoadText(path string) (*Config, []byte, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return c, data, nil
}

// MaxFileSize bounds what ReadFile reads: far above any real file (a
// million peers take about 130 MiB), and a config path that leads to
// /dev/zero or /dev/urandom stops here instead of filling memory.
const MaxFileSize = 256 << 20

// ErrFileTooLarge is ReadFile's error for a file past MaxFileSize.
var ErrFileTooLarge = errors.New("larger than 256 MiB: not a configuration file")

// ErrNotText is ReadFile's error for a file holding a NUL byte, which no
// text file has (wg-quick's shell drops them with a warning, wg cuts the
// line there). Text saved as UTF-16 has one in every other byte.
var ErrNotText = errors.New("holds a NUL byte: not a configuration file (if it is UTF-16 text, save it as UTF-8)")

// ReadFile reads a configuration file, at most MaxFileSize bytes.
func ReadFile(path string) ([]byte, error) { return readFileMax(path, MaxFileSize) }

// readFileMax reads path, refusing it past limit bytes or at its first NUL
// byte. A regular file is read into one buffer of its size; anything else
// (a pipe, a device) grows as it comes, so /dev/zero or /dev/urandom stop
// in the first read instead of at the bound.
func readFileMax(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fail := func(err error) ([]byte, error) {
		if _, ok := err.(*os.PathError); ok {
			return nil, err // names the file already
		}
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	size := int64(4096)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		if fi.Size() > limit {
			return fail(ErrFileTooLarge)
		}
		size = fi.Size() + 1 // +1: EOF in the first read when the size holds
	}
	data := make([]byte, 0, min(size, limit+1))
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		room := data[len(data):min(int64(cap(data)), limit+1)]
		n, err := f.Read(room)
		if bytes.IndexByte(room[:n], 0) >= 0 {
			return fail(ErrNotText)
		}
		data = data[:len(data)+n]
		if int64(len(data)) > limit {
			return fail(ErrFileTooLarge)
		}
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return fail(err)
		}
	}
}

// Parse parses a configuration file held in data. The name is used only in
// error messages. The first error stops parsing and is a *ParseError.
func Parse(name string, data []byte) (*Config, error) {
	p := parser{name: name}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		p.n++
		if err := p.line(string(line)); err != nil {
			err.File, err.Line = name, p.n
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		err.File = name
		return nil, err
	}
	return &p.cfg, nil
}

// line handles one line of input. Comments start at the first '#', as in
// both wg and wg-quick, so no value can contain '#'.
func (p *parser) line(raw string) *ParseError {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	s := trimSpace(raw)
	if s == "" {
		return nil
	}
	if s[0] == '[' {
		return p.header(s)
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		s = hideKeys(s)
		return &ParseError{Value: s, Err: ErrSyntax,
			Msg: fmt.Sprintf("%q is neither a [Section] header nor Key = Value", s)}
	}
	k, v = trimSpace(k), trimSpace(v)
	if p.sect == sectionNone {
		return &ParseError{Key: k, Err: ErrUnknownKey,
			Msg: "key outside of a section (the file must start with [Interface] or [Peer])"}
	}
	if name := quickKey(k); name != "" {
		if p.sect != sectionInterface {
			return &ParseError{Key: name, Err: ErrUnknownKey, Msg: "only valid in [Interface]"}
		}
		return withKey(name, p.quickValue(name, v))
	}
	name, sect := wgKey(removeSpace(k))
	switch {
	case name == "":
		return &ParseError{Key: hideKeys(k), Err: ErrUnknownKey, Msg: "unknown key"}
	case sect != p.sect && sect == sectionInterface:
		return &ParseError{Key: name, Err: ErrUnknownKey, Msg: "only valid in [Interface]"}
	case sect != p.sect:
		return &ParseError{Key: name, Err: ErrUnknownKey, Msg: "only valid in [Peer]"}
	}
	v = removeSpace(v) // wg drops every blank in the lines it reads
	if v == "" {
		return &ParseError{Key: name, Err: ErrInvalidValue, Msg: "empty value"}
	}
	if sect == sectionInterface {
		return withKey(name, p.interfaceValue(name, v))
	}
	return withKey(name, p.peerValue(name, v))
}

// header starts a section. wg accepts several [Interface] sections and
// merges them, so this does too.
func (p *parser) header(s string) *ParseError {
	switch strings.ToLower(removeSpace(s)) {
	case "[interface]":
		p.sect = sectionInterface
	case "[peer]":
		p.sect = sectionPeer
		p.cfg.Peers = append(p.cfg.Peers, Peer{})
		p.peerLine = append(p.peerLine, p.n)
		p.keyLine = append(p.keyLine, 0)
	default:
		return &ParseError{Key: hideKeys(s), Err: ErrUnknownKey,
			Msg: "unknown section (expected [Interface] or [Peer])"}
	}
	return nil
}

// quickKey returns the canonical name of a key that only wg-quick reads, or
// "" when k is not one. wg-quick compares the trimmed key, ignoring case.
func quickKey(k string) string {
	for _, name := range [...]string{keyAddress, keyDNS, keyMTU, keyTable,
		keyPreUp, keyPostUp, keyPreDown, keyPostDown, keySaveConfig} {
		if strings.EqualFold(k, name) {
			return name
		}
	}
	return ""
}

// wgKey returns the canonical name of a key that wg reads and the section
// it belongs to, or "" when k is not one.
func wgKey(k string) (string, section) {
	for _, name := range [...]string{keyPrivateKey, keyListenPort, keyFwMark} {
		if strings.EqualFold(k, name) {
			return name, sectionInterface
		}
	}
	for _, name := range [...]string{keyPublicKey, keyPresharedKey, keyAllowedIPs,
		keyEndpoint, keyPersistentKeepalive} {
		if strings.EqualFold(k, name) {
			return name, sectionPeer
		}
	}
	return "", sectionNone
}

// withKey fills in the key of an error from a value parser.
func withKey(name string, err *ParseError) *ParseError {
	if err != nil && err.Key == "" {
		err.Key = name
	}
	return err
}

// quickValue stores a value of a key that only wg-quick reads. Values keep
// their inner blanks: wg-quick trims only the ends.
func (p *parser) quickValue(name, v string) *ParseError {
	ifc := &p.cfg.Interface
	var err *ParseError
	switch name {
	case keyAddress:
		ifc.Addresses, err = appendPrefixes(ifc.Addresses, splitList(v))
	case keyDNS:
		ifc.DNS, ifc.DNSSearch, err = appendDNS(ifc.DNS, ifc.DNSSearch, splitList(v))
	case keyMTU:
		ifc.MTU, err = parseMTU(v)
	case keyTable:
		ifc.Table, err = parseTable(v)
	case keySaveConfig:
		ifc.SaveConfig, err = parseBool(v)
	case keyPreUp:
		ifc.PreUp = appendHook(ifc.PreUp, v)
	case keyPostUp:
		ifc.PostUp = appendHook(ifc.PostUp, v)
	case keyPreDown:
		ifc.PreDown = appendHook(ifc.PreDown, v)
	case keyPostDown:
		ifc.PostDown = appendHook(ifc.PostDown, v)
	}
	return err
}

// interfaceValue stores a value of a wg key of the [Interface] section. As
// in wg, a key given twice takes the later value.
func (p *parser) interfaceValue(name, v string) *ParseError {
	ifc := &p.cfg.Interface
	var err *ParseError
	switch name {
	case keyPrivateKey:
		ifc.PrivateKey, err = parseSecretKey(noise.ParsePrivateKey, v)
		ifc.ZeroPrivateKey = err == nil && ifc.PrivateKey.IsZero()
	case keyListenPort:
		ifc.ListenPort, err = parsePort(v, 0)
		ifc.ZeroListenPort = err == nil && ifc.ListenPort == 0
	case keyFwMark:
		ifc.FwMark, err = parseFwMark(v)
		ifc.ZeroFwMark = err == nil && ifc.FwMark == 0
	}
	return err
}

// peerValue stores a value of a key of the current [Peer] section.
// AllowedIPs accumulate over lines; other keys take the later value.
func (p *parser) peerValue(name, v string) *ParseError {
	peer := &p.cfg.Peers[len(p.cfg.Peers)-1]
	var err *ParseError
	switch name {
	case keyPublicKey:
		peer.PublicKey, err = parsePublicKey(v)
		if err == nil {
			p.keyLine[len(p.keyLine)-1] = p.n
		}
	case keyPresharedKey:
		peer.PresharedKey, err = parseSecretKey(noise.ParsePresharedKey, v)
		peer.ZeroPresharedKey = err == nil && peer.PresharedKey.IsZero()
	case keyAllowedIPs:
		peer.AllowedIPs, err = appendPrefixes(peer.AllowedIPs, strings.Split(v, ","))
	case keyEndpoint:
		peer.Endpoint, err = parseEndpoint(v)
	case keyPersistentKeepalive:
		peer.PersistentKeepalive, err = parseKeepalive(v)
		peer.ZeroKeepalive = err == nil && peer.PersistentKeepalive == 0
	}
	return err
}

// finish checks what can only be checked once the whole file is read: every
// peer has a public key and no two peers share one.
func (p *parser) finish() *ParseError {
	seen := make(map[noise.PublicKey]int, len(p.cfg.Peers))
	for i, peer := range p.cfg.Peers {
		if p.keyLine[i] == 0 {
			return &ParseError{Line: p.peerLine[i], Key: "[Peer]", Err: ErrMissingPublicKey,
				Msg: "peer has no PublicKey"}
		}
		if first, ok := seen[peer.PublicKey]; ok {
			v := peer.PublicKey.String()
			return &ParseError{Line: p.keyLine[i], Key: keyPublicKey, Value: v, Err: ErrDuplicatePeer,
				Msg: fmt.Sprintf("%q is already the key of the peer at line %d", v, first)}
		}
		seen[peer.PublicKey] = p.keyLine[i]
	}
	return nil
}

// isSpace is C's isspace in the "C" locale, which both wg and wg-quick use.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

func trimSpace(s string) string { return strings.TrimFunc(s, isSpace) }

// removeSpace drops every blank byte, leaving all other bytes (even
// invalid UTF-8) as they are, as wg's config_read_line does.
func removeSpace(s string) string {
	if strings.IndexFunc(s, isSpace) < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if !isSpace(rune(s[i])) {
			out = append(out, s[i])
		}
	}
	return string(out)
}

// splitList splits a wg-quick list value on commas and blanks, as the
// script's ${value//,/ } word splitting does; empty words disappear.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || isSpace(r) })
}

// HideKeys is hideKeys for the other packages that echo untrusted text
// (the UAPI server's errors and logs).
func HideKeys(s string) string { return hideKeys(s) }

// hideKeys replaces what may be a key in text echoed back in an error (a
// run of 40 or more base64 or hex characters: a key is 43 of them and
// '='), so that a mistyped line such as "PrivateKey <key>" or
// "[Interface] PrivateKey = <key>" does not put the key in a terminal or a
// journal.
func hideKeys(s string) string {
	isKeyChar := func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isKeyChar(s[j]) {
			j++
		}
		if j-i >= 40 {
			for j < len(s) && s[j] == '=' {
				j++
			}
			b.WriteString("(key hidden)")
		} else {
			b.WriteString(s[i:j])
		}
		if j < len(s) {
			b.WriteByte(s[j])
			j++
		}
		i = j
	}
	return b.String()
}
