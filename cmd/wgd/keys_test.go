package main

import (
	"crypto/rand"
	"encoding/base64"
	"os/exec"
	"strings"
	"testing"
)

func TestGenkey(t *testing.T) {
	for i := 0; i < 20; i++ {
		r := runTool(t, "", wgdBin, "genkey")
		if r.code != 0 || r.stderr != "" || len(r.stdout) != 45 || r.stdout[44] != '\n' {
			t.Fatalf("%+v", r)
		}
		b, err := base64.StdEncoding.DecodeString(r.stdout[:44])
		if err != nil || len(b) != 32 {
			t.Fatalf("%q: %v", r.stdout, err)
		}
		if b[0]&7 != 0 || b[31]&0x80 != 0 || b[31]&0x40 == 0 {
			t.Fatalf("key %q is not clamped", r.stdout)
		}
	}
}

func TestGenpsk(t *testing.T) {
	a := runTool(t, "", wgdBin, "genpsk")
	b := runTool(t, "", wgdBin, "genpsk")
	if a.code != 0 || len(a.stdout) != 45 || a.stdout == b.stdout {
		t.Fatalf("%+v %+v", a, b)
	}
	if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.stdout)); err != nil {
		t.Fatal(err)
	}
}

func TestKeyCommandsRejectArguments(t *testing.T) {
	for _, c := range []string{"genkey", "genpsk", "pubkey"} {
		r := runTool(t, "", wgdBin, c, "extra")
		if r.code != 1 || r.stderr != "wgd: usage: wgd "+c+"\n" {
			t.Fatalf("%s: %+v", c, r)
		}
	}
}

func findWg(t *testing.T) string {
	wg, err := exec.LookPath("wg")
	if err != nil {
		t.Skip("wg (wireguard-tools) is not installed: nothing to compare with")
	}
	return wg
}

// TestPubkeyMatchesWg feeds the same private keys to wg pubkey and wgd
// pubkey: random clamped and unclamped keys and the edge values.
func TestPubkeyMatchesWg(t *testing.T) {
	wg := findWg(t)
	keys := []string{
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"//////////////////////////////////////////8=",
	}
	for i := 0; i < 200; i++ {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, base64.StdEncoding.EncodeToString(b[:]))
	}
	for _, k := range keys {
		want := runTool(t, k+"\n", wg, "pubkey")
		got := runTool(t, k+"\n", wgdBin, "pubkey")
		if want.code != 0 || got != want {
			t.Fatalf("key %s: wg %+v, wgd %+v", k, want, got)
		}
	}
}

// TestPubkeyBadInputLikeWg checks exit codes and messages on bad input
// against wg's (wg prefixes its argv[0], wgd says "wgd: ...").
func TestPubkeyBadInputLikeWg(t *testing.T) {
	wg := findWg(t)
	key := "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	inputs := map[string]string{
		"BAD":             "BAD\n",
		"empty":           "",
		"no newline":      key,
		"blanks and NULs": key + "\x00 \t\r\n\n",
		"trailing text":   key + "\nx",
		"leading blank":   " " + key + "\n",
		"no padding":      key[:43] + "A\n",
		"bad base64":      "!" + key[1:] + "\n",
		"non-canonical":   key[:42] + "n=\n",
		"too long":        key + key + "\n",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want := runTool(t, in, wg, "pubkey")
			got := runTool(t, in, wgdBin, "pubkey")
			if _, msg, ok := strings.Cut(want.stderr, ": "); ok { // wg prefixes argv[0]
				want.stderr = "wgd: " + msg
			}
			if got != want {
				t.Fatalf("wg %+v\nwgd %+v", want, got)
			}
		})
	}
}
