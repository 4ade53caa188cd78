package conf

import (
	"reflect"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every accepted
// file survives Marshal and Parse unchanged, and that Marshal is a fixed
// point (canonical output marshals to itself).
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullFile))
	f.Add([]byte(fullCanonical))
	for _, tt := range badCases {
		f.Add([]byte(tt.file))
	}
	f.Add([]byte("[Peer]\nPublicKey=" + testPub1 + "\nEndpoint=[fe80::1%eth0]:1\nAllowedIPs=::ffff:198.18.0.1/128\n"))
	f.Add([]byte("[Interface]\nDNS=~., a_b.c, ::1\nTable=0x10\nFwMark=0x0\nPostUp=\v x \r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		out := c.Marshal()
		back, err := Parse("marshal", out)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, back, out)
		}
		if again := back.Marshal(); string(again) != string(out) {
			t.Fatalf("Marshal is not canonical:\n%s\n%s", out, again)
		}
		if _, err := Parse("strip", Strip(c).Marshal()); err != nil {
			t.Fatalf("stripped output does not parse: %v", err)
		}
	})
}
