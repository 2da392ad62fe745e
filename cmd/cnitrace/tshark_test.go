package main

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// lookTshark finds tshark, or skips (fails when CI=true: CI has it).
func lookTshark(t *testing.T) string {
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

func runTshark(t *testing.T, tshark string, args ...string) string {
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

// tsharkFields returns one row per packet of file: the fields asked for.
func tsharkFields(t *testing.T, tshark, file string, opts []string, fields ...string) [][]string {
	t.Helper()
	args := append(append([]string{"-r", file}, opts...), "-T", "fields", "-E", "separator=|")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(runTshark(t, tshark, args...)), "\n") {
		if row := strings.Split(line, "|"); len(row) == len(fields) {
			rows = append(rows, row)
		} else {
			t.Fatalf("tshark printed %q, want %d fields", line, len(fields))
		}
	}
	return rows
}

// tsharkISB is one interface statistics block as tshark decodes it.
type tsharkISB struct{ Interface, Received, Dropped, Delivered, Comment string }

// tsharkStatistics reads the statistics blocks of file with Wireshark's
// pcapng file-format dissector: opened as "MIME Files Format", the whole
// file is one frame whose tree holds every block (tshark has no -z
// statistic for them; Wireshark shows them in Capture File Properties).
func tsharkStatistics(t *testing.T, tshark, file string) []tsharkISB {
	t.Helper()
	out := runTshark(t, tshark, "-X", "read_format:MIME Files Format", "-r", file, "-T", "pdml")
	var doc struct {
		Packets []struct {
			Protos []pdmlField `xml:"proto"`
		} `xml:"packet"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("tshark's PDML: %v", err)
	}
	var isbs []tsharkISB
	var walk func(f pdmlField)
	walk = func(f pdmlField) {
		if f.Name == "pcapng.block" {
			if f.find("pcapng.block.type") == "0x00000005" {
				isbs = append(isbs, tsharkISB{
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
