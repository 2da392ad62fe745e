package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// TestDecodeRendersTheSame: a report saved as JSON and decoded renders as
// the run printed it, byte for byte, in every format.
func TestDecodeRendersTheSame(t *testing.T) {
	for _, tc := range variedResults(t) {
		t.Run(tc.name, func(t *testing.T) {
			var js bytes.Buffer
			if err := Render(&js, tc.r, FormatJSON); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(&js)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, f := range Formats() {
				var want, again bytes.Buffer
				if err := Render(&want, tc.r, f); err != nil {
					t.Fatal(err)
				}
				if err := Render(&again, got, f); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again.Bytes(), want.Bytes()) {
					t.Errorf("%v: the decoded report renders\n%s\nwant\n%s", f, again.Bytes(), want.Bytes())
				}
			}
		})
	}
}

// TestDecodeGolden: the golden JSON report decodes and renders as the
// golden file of every format.
func TestDecodeGolden(t *testing.T) {
	in, err := os.Open(goldenFile(FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Formats() {
		want, err := os.ReadFile(goldenFile(f))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := Render(&b, r, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%v: the decoded golden report renders\n%s\nwant (%s)\n%s", f, b.Bytes(), goldenFile(f), want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	golden, err := os.ReadFile(goldenFile(FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(goldenFile(FormatText))
	if err != nil {
		t.Fatal(err)
	}
	schema := func(v string) string {
		return strings.Replace(string(golden), `"schema_version": 1,`, `"schema_version": `+v+`,`, 1)
	}
	const notReport = -1 // want ErrNotReport, not a *SchemaError
	tests := []struct {
		name, in string
		schema   int    // the *SchemaError's version, or notReport
		want     string // in the message
	}{
		{"empty", "", notReport, "not a cnitrace JSON report: the input is empty"},
		{"white space", " \n\t", notReport, "the input is empty"},
		{"text report", string(text), notReport, "not a cnitrace JSON report: invalid character"},
		{"cut short", string(golden[:len(golden)/2]), notReport, "not a cnitrace JSON report: unexpected EOF"},
		{"trailing garbage", string(golden) + "x", notReport, "more data after the report"},
		{"two reports", string(golden) + string(golden), notReport, "more data after the report"},
		{"array", "[1, 2]", notReport, "the input is JSON an array, not an object"},
		{"null", "null", notReport, "JSON null, not an object"},
		{"number", "1", notReport, "JSON a number, not an object"},
		{"a path", `{"target": "10.244.2.2", "source": {}, "points": []}`, notReport, "the object has no schema_version"},
		{"version as a string", schema(`"1"`), notReport, "schema_version is not a whole number"},
		{"version 1.5", schema(`1.5`), notReport, "schema_version is not a whole number"},
		{"wrong field type", `{"schema_version": 1, "probes": {"sent": "thirty"}}`, notReport, "not a cnitrace JSON report: json: cannot unmarshal"},
		{"newer", schema("2"), 2, "schema_version 2 (written by cnitrace v0.9.0 4f1c2ab39d07) is newer than this cnitrace reads, 1"},
		{"newer, no run", `{"schema_version": 7, "run": 3}`, 7, "schema_version 7 is newer than this cnitrace reads, 1"},
		{"zero", schema("0"), 0, "schema_version 0 (written by cnitrace v0.9.0 4f1c2ab39d07) is not one cnitrace ever wrote; it reads 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Decode(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("got %+v, want an error", r)
			}
			var se *SchemaError
			switch {
			case tc.schema != notReport:
				if !errors.As(err, &se) || se.Version != tc.schema {
					t.Errorf("got %v, want a *SchemaError of version %d", err, tc.schema)
				}
				if errors.Is(err, ErrNotReport) {
					t.Errorf("got %v, which is ErrNotReport too; want only the schema error", err)
				}
			case !errors.Is(err, ErrNotReport):
				t.Errorf("got %v, want ErrNotReport", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestDecodeReadError: the reader's own error is no verdict on the
// input: it is returned as it is, not as ErrNotReport.
func TestDecodeReadError(t *testing.T) {
	errDisk := errors.New("input/output error")
	_, err := Decode(io.MultiReader(strings.NewReader(`{"schema_version": 1, `), iotest.ErrReader(errDisk)))
	if !errors.Is(err, errDisk) || errors.Is(err, ErrNotReport) {
		t.Errorf("got %v, want the reader's error and not ErrNotReport", err)
	}
}

// TestDecodeIgnoresUnknownFields: a report of schema_version 1 from a
// later cnitrace, with fields this one does not know, still decodes.
func TestDecodeIgnoresUnknownFields(t *testing.T) {
	golden, err := os.ReadFile(goldenFile(FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	later := strings.Replace(string(golden), `"target":`, `"added_later": {"x": [1, 2]}, "target":`, 1)
	r, err := Decode(strings.NewReader(later + "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "10.244.2.2" || len(r.Segments) != numSegs {
		t.Errorf("got target %q and %d segments, want 10.244.2.2 and %d", r.Target, len(r.Segments), numSegs)
	}
}

// FuzzDecode: Decode never panics, and what it accepts renders in every
// format without error or panic, and renders the same again once saved
// as JSON and decoded a second time.
func FuzzDecode(f *testing.F) {
	golden, err := os.ReadFile(goldenFile(FormatJSON))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"schema_version": 1}`))
	f.Add([]byte(`{"schema_version": 1, "segments": [{"from": "p9", "to": "p9", "notes": ["few samples: x", "y"]}], "source": {"pod": "a", "sandbox_id": "b"}}`))
	f.Add([]byte(`{"schema_version": 1, "rtt_us": {"p50": 1}, "rtt_clocks": {"send": {}, "receive": null}, "baseline": {"clock": "kernel-send-to-capture"}, "run": {"command": ["a=b", "` + "`" + `"]}}`))
	f.Add([]byte(`{"schema_version": 2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		var js bytes.Buffer
		if err := Render(&js, r, FormatJSON); err != nil {
			t.Fatalf("Render json: %v", err)
		}
		again, err := Decode(&js)
		if err != nil {
			t.Fatalf("the report Decode accepted, saved again, does not decode: %v", err)
		}
		for _, f := range Formats() {
			var a, b bytes.Buffer
			if err := Render(&a, r, f); err != nil {
				t.Fatalf("Render %v: %v", f, err)
			}
			if err := Render(&b, again, f); err != nil {
				t.Fatalf("Render %v of the report saved again: %v", f, err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("%v: saved and decoded again, the report renders\n%s\nwant\n%s", f, b.Bytes(), a.Bytes())
			}
		}
	})
}
