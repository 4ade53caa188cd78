package netcfg

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wgdvpn/wgd/conf"
)

// TableMode is what the Table setting asks for.
type TableMode int

// The three shapes of the Table setting.
const (
	// TableAuto routes in the main table, and a default route through
	// wg-quick's fwmark table and policy rules.
	TableAuto TableMode = iota
	// TableOff adds no routes at all.
	TableOff
	// TableFixed adds every route, default routes included, to one table.
	TableFixed
)

// Table is a parsed Table setting. Name keeps the user's spelling because
// wg-quick prints it back in "ip route add ... table NAME".
type Table struct {
	Mode TableMode
	ID   int
	Name string
}

// builtinTables are the names iproute2 knows without any file.
var builtinTables = map[string]int{"unspec": 0, "default": 253, "main": 254, "local": 255}

// defaultRTTables are where iproute2 looks for table names, old and new
// locations both.
func defaultRTTables() []string {
	files := []string{"/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables", "/usr/lib/iproute2/rt_tables"}
	for _, dir := range []string{"/etc/iproute2/rt_tables.d", "/usr/share/iproute2/rt_tables.d", "/usr/lib/iproute2/rt_tables.d"} {
		more, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		files = append(files, more...)
	}
	return files
}

// ParseTable interprets a Table setting, looking names up in the given
// rt_tables files (missing files are skipped, as iproute2 does).
func ParseTable(s string, files []string) (Table, error) {
	switch s {
	case "", "auto":
		return Table{Mode: TableAuto, Name: s}, nil
	case "off":
		return Table{Mode: TableOff, Name: s}, nil
	}
	if id, err := parseTableID(s); err == nil {
		return Table{Mode: TableFixed, ID: id, Name: s}, nil
	}
	if id, ok := builtinTables[s]; ok {
		return Table{Mode: TableFixed, ID: id, Name: s}, nil
	}
	for _, f := range files {
		if id, ok := lookupTableFile(f, s); ok {
			return Table{Mode: TableFixed, ID: id, Name: s}, nil
		}
	}
	return Table{}, fmt.Errorf("%w %q (not auto, off, a table number or a name in rt_tables)", ErrBadTable, s)
}

// parseTableID accepts what iproute2's get_u32 accepts: decimal, 0x hex or
// leading-zero octal. 0 is table unspec, which the kernel reads as main,
// as it does for wg-quick's "ip route add ... table 0".
func parseTableID(s string) (int, error) {
	v, ok := conf.ParseTableNumber(s)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a table number", ErrBadTable, s)
	}
	return int(v), nil
}

func lookupTableFile(path, name string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return lookupTable(f, name)
}

// lookupTable scans an rt_tables file ("ID NAME" lines, '#' comments) for a
// name.
func lookupTable(r io.Reader, name string) (int, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[1] != name {
			continue
		}
		v, err := strconv.ParseUint(fields[0], 0, 32)
		if err != nil {
			continue
		}
		return int(v), true
	}
	return 0, false
}

// tableErr names the file and key of a Table setting that ParseTable
// refused: it is found before anything changes, like the parser's errors.
func (r *Runner) tableErr(err error) error {
	if r.ConfigFile == "" {
		return stepErr("parse table", err)
	}
	return fmt.Errorf("%s: Table: %w", r.ConfigFile, err)
}
