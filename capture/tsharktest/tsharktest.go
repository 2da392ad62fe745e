// Package tsharktest reads pcapng files with tshark (Debian package
// tshark) in tests: where a real program reads what cnitrace writes, a
// test uses that program. It is for tests only; the product never runs
// tshark.
package tsharktest

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Look finds tshark, or skips t (fails it when CI=true: CI installs it).
func Look(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tshark is needed (apt-get install tshark): %v", err)
		}
		t.Skipf("skipping, no tshark (apt-get install tshark): %v", err)
	}
	return path
}

// Run runs tshark with args and returns its stdout; a failure fails t
// with its stderr.
func Run(t testing.TB, tshark string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Fields returns one row per packet of file: the fields asked for, read
// with the extra options opts (such as "-d", "udp.port==8472,vxlan").
func Fields(t testing.TB, tshark, file string, opts []string, fields ...string) [][]string {
	t.Helper()
	args := append(append([]string{"-r", file}, opts...), "-T", "fields", "-E", "separator=|")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(Run(t, tshark, args...)), "\n") {
		row := strings.Split(line, "|")
		if len(row) != len(fields) {
			t.Fatalf("tshark printed %q, want %d fields", line, len(fields))
		}
		rows = append(rows, row)
	}
	return rows
}

// ISB is one interface statistics block as tshark decodes it.
type ISB struct{ Interface, Received, Dropped, Delivered, Comment string }

// Statistics reads the statistics blocks of file with Wireshark's pcapng
// file-format dissector: opened as "MIME Files Format", the whole file is
// one frame whose tree holds every block (tshark has no -z statistic for
// them; Wireshark shows them in Capture File Properties).
func Statistics(t testing.TB, tshark, file string) []ISB {
	t.Helper()
	out := Run(t, tshark, "-X", "read_format:MIME Files Format", "-r", file, "-T", "pdml")
	var doc struct {
		Packets []struct {
			Protos []pdmlField `xml:"proto"`
		} `xml:"packet"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("tshark's PDML: %v", err)
	}
	var isbs []ISB
	var walk func(f pdmlField)
	walk = func(f pdmlField) {
		if f.Name == "pcapng.block" {
			if f.find("pcapng.block.type") == "0x00000005" {
				isbs = append(isbs, ISB{
					f.find("pcapng.interface_id"),
					f.find("pcapng.options.option.data.interface.received"),
					f.find("pcapng.options.option.data.interface.dropped"),
					f.find("pcapng.options.option.data.interface.delivered_to_user"),
					f.find("pcapng.options.option.data.comment"),
				})
			}
			return
		}
		for _, c := range f.Fields {
			walk(c)
		}
	}
	for _, p := range doc.Packets {
		for _, proto := range p.Protos {
			walk(proto)
		}
	}
	return isbs
}

type pdmlField struct {
	Name   string      `xml:"name,attr"`
	Show   string      `xml:"show,attr"`
	Fields []pdmlField `xml:"field"`
}

// find returns the show value of the first field named name under f.
func (f pdmlField) find(name string) string {
	for _, c := range f.Fields {
		if c.Name == name {
			return c.Show
		}
		if v := c.find(name); v != "" {
			return v
		}
	}
	return ""
}
