package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
)

// capColumns are the capability columns of the privilege table, in order.
var capColumns = []string{"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}

// What a cell of the privilege table says about a command and a capability.
const (
	needed   = "yes"  // used; missing, the command names it in its error and hint
	needRoot = "root" // used by a lab command, which must also run as uid 0
	unused   = "-"
)

// privilegeRow is one command of the privilege table: the command line as
// docs/privileges.md shows it (placeholders FILE, PID and IP), and a cell
// per capColumns entry.
type privilegeRow struct {
	command string
	cells   [4]string
}

// privilegeTable is the table docs/privileges.md and the README show,
// as the data TestPrivilegedCapabilityTable enforces.
var privilegeTable = []privilegeRow{
	{"cnitrace trace --netns FILE --to IP", [4]string{needed, needed, needed, unused}},
	{"cnitrace trace --netns FILE --to IP --baseline", [4]string{needed, needed, needed, unused}},
	{"cnitrace trace --pid PID --to IP", [4]string{needed, needed, needed, needed}},
	{"cnitrace path --netns FILE --to IP", [4]string{needed, needed, needed, unused}},
	{"cnitrace path --pid PID --to IP", [4]string{needed, needed, needed, needed}},
	{"cnitrace listen --netns FILE --from IP", [4]string{needed, needed, needed, unused}},
	{"cnitrace listen --pid PID --from IP", [4]string{needed, needed, needed, needed}},
	{"cnitrace merge TRACE.json LISTEN.json", [4]string{unused, unused, unused, unused}},
	{"cnitrace-lab up", [4]string{unused, needRoot, needRoot, unused}},
	{"cnitrace-lab up --delay network=1ms", [4]string{needRoot, needRoot, needRoot, unused}},
}

// capabilities returns the capabilities whose cell in r is one of want.
func (r privilegeRow) capabilities(want ...string) []string {
	var caps []string
	for i, cell := range r.cells {
		if slices.Contains(want, cell) {
			caps = append(caps, capColumns[i])
		}
	}
	return caps
}

// TestPrivilegeTableDocumented checks that docs/privileges.md and the
// README's Requirements show privilegeTable, row by row and cell by cell,
// so that what is documented is what the privileged test enforces.
func TestPrivilegeTableDocumented(t *testing.T) {
	want := [][]string{append([]string{"command"}, capColumns...)}
	for _, r := range privilegeTable {
		want = append(want, append([]string{"`" + r.command + "`"}, r.cells[:]...))
	}
	for _, file := range []string{"../../docs/privileges.md", "../../README.md"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := markdownTable(string(text), "| command | CAP_")
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("%s shows the privilege table\n%s\nwant (privilegeTable in privileges_test.go)\n%s", file, formatTable(got), formatTable(want))
			}
		})
	}
}

// markdownTable returns the cells of the first table in text whose header
// line starts with header, the separator line left out.
func markdownTable(text, header string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case len(rows) == 0 && !strings.HasPrefix(line, header):
			continue
		case !strings.HasPrefix(line, "|"):
			return rows
		case strings.HasPrefix(line, "|---"):
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

func formatTable(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
	}
	return b.String()
}

// TestCapabilityHint: a missing capability's hint names it and says how
// to grant it in a container, to a normal user (the setcap line) and on
// Kubernetes, on one line, and never says to run as root. The setcap line
// grants exactly what the cnitrace rows of the table use.
func TestCapabilityHint(t *testing.T) {
	var used []string
	for _, r := range privilegeTable {
		if strings.HasPrefix(r.command, program+" ") {
			for _, c := range r.capabilities(needed) {
				if !slices.Contains(used, c) {
					used = append(used, c)
				}
			}
		}
	}
	if want := "setcap " + strings.ToLower(strings.Join(used, ",")) + "+ep ./cnitrace"; setcapAll != want {
		t.Errorf("the hint's setcap line is %q, want %q: what the cnitrace rows of the table use", setcapAll, want)
	}
	for _, c := range capColumns {
		h := hint(fmt.Errorf("open something: %w", topology.NeedsCapability(syscall.EPERM, c)))
		for _, want := range []string{c, "--cap-add " + strings.TrimPrefix(c, "CAP_"), "'" + setcapAll + "'", "kubectl debug node/<node> --profile=sysadmin"} {
			if !strings.Contains(h, want) {
				t.Errorf("hint for %s = %q, want it to say %q", c, h, want)
			}
		}
		if strings.Contains(strings.ToLower(h), "root") || strings.Contains(h, "\n") {
			t.Errorf("hint for %s = %q, want one line that does not mention root", c, h)
		}
	}
}
