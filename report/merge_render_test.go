package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// malformedMerges are merge blocks a hand-edited or truncated file can
// hold: too few nodes for the targets named, wire halves without a clock.
var malformedMerges = []struct{ name, merge string }{
	{"no nodes, two targets", `{"nodes": [], "targets": [{"node": "b", "pod": "x", "probes": 1}, {"node": "c", "pod": "y", "probes": 2}]}`},
	{"one node, two targets", `{"nodes": [{"id": "a", "role": "trace"}], "targets": [{"node": "b"}, {"node": "c"}]}`},
	{"halves without a clock", `{"nodes": [{"id": "a"}, {"id": "b"}], "wire_request_us": {"p50": 1}, "wire_reply_us": {"p50": 2}}`},
	{"null nodes and clock", `{"nodes": null, "clock": null, "targets": null}`},
}

// withMerge is the golden JSON report with a merge block added.
func withMerge(t testing.TB, merge string) []byte {
	t.Helper()
	golden, err := os.ReadFile(goldenFile(FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.Replace(string(golden), `"schema_version": 1,`, `"schema_version": 1, "merge": `+merge+`,`, 1))
}

// TestRenderMalformedMerge: a report whose merge block is malformed
// renders in every format without a panic.
func TestRenderMalformedMerge(t *testing.T) {
	for _, tt := range malformedMerges {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := DecodeAll(bytes.NewReader(withMerge(t, tt.merge)))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for _, f := range Formats() {
				var b bytes.Buffer
				if err := Render(&b, rs[0], f); err != nil {
					t.Errorf("render %v: %v", f, err)
				}
			}
		})
	}
}

// FuzzDecodeAllRender: whatever the input, DecodeAll returns an error or
// reports that render in every format, and nothing panics. Seeded with the
// golden reports, the merge testdata (its files and their merge, one
// report and an array of two) and malformed merge blocks.
func FuzzDecodeAllRender(f *testing.F) {
	seeds, err := filepath.Glob("../testdata/*.golden.json")
	if err != nil {
		f.Fatal(err)
	}
	merge, err := filepath.Glob("../cmd/cnitrace/testdata/merge/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range append(seeds, merge...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	one, two := mergedSeeds(f)
	f.Add(one)
	f.Add(two)
	for _, tt := range malformedMerges {
		f.Add(withMerge(f, tt.merge))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := DecodeAll(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, r := range rs {
			for _, format := range Formats() {
				var out bytes.Buffer
				if err := Render(&out, r, format); err != nil {
					t.Fatalf("render %v: %v", format, err)
				}
			}
		}
	})
}

// mergedSeeds merges the lab files of cmd/cnitrace/testdata/merge and
// returns the merged report as JSON, and an array of it twice, as merge
// writes several.
func mergedSeeds(f *testing.F) (one, two []byte) {
	read := func(name string) (*Result, *Stamps) {
		b, err := os.ReadFile("../cmd/cnitrace/testdata/merge/" + name)
		if err != nil {
			f.Fatal(err)
		}
		r, s, err := DecodeMergeInput(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		return r, s
	}
	src, _ := read("web-node.json")
	_, l := read("db-node.json")
	rs, err := Merge(src, l)
	if err != nil {
		f.Fatal(err)
	}
	var b bytes.Buffer
	if err := Render(&b, rs[0], FormatJSON); err != nil {
		f.Fatal(err)
	}
	one = bytes.Clone(b.Bytes())
	return one, []byte("[" + string(one) + "," + string(one) + "]")
}
