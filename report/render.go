package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format is an output format of Render.
type Format int

// Output formats.
const (
	FormatText     Format = iota // aligned ASCII for terminals
	FormatJSON                   // the schema_version 1 contract, indented
	FormatMarkdown               // GitHub-flavoured Markdown that pastes into a ticket
	FormatHTML                   // one self-contained page: inline CSS and SVG, no script, no fetch
)

// Formats returns every format, in the order --help lists them.
func Formats() []Format { return []Format{FormatText, FormatJSON, FormatMarkdown, FormatHTML} }

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatJSON:
		return "json"
	case FormatMarkdown:
		return "markdown"
	case FormatHTML:
		return "html"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the format with the given name, as given to --format.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown output format %q (want text, json, markdown or html)", s)
}

// Ext returns the file name extension of the format, dot included:
// ".txt", ".json", ".md", ".html".
func (f Format) Ext() string {
	switch f {
	case FormatText:
		return ".txt"
	case FormatJSON:
		return ".json"
	case FormatMarkdown:
		return ".md"
	case FormatHTML:
		return ".html"
	}
	return ""
}

// Render writes r to w in format f.
func Render(w io.Writer, r *Result, f Format) error {
	if r == nil {
		return errors.New("render report: no result")
	}
	switch f {
	case FormatText:
		return renderText(w, r)
	case FormatJSON:
		return renderJSON(w, r)
	case FormatMarkdown:
		return renderMarkdown(w, r)
	case FormatHTML:
		return renderHTML(w, r)
	}
	return fmt.Errorf("render report: unknown output format %v", f)
}

func renderJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("render report as json: %w", err)
	}
	return nil
}

// table aligns columns; the last column is never padded.
type table struct {
	right []bool // right-align column i
	rows  [][]string
}

// add appends a row, made ASCII first so that widths are counted right.
func (t *table) add(cells ...string) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = ascii(c)
	}
	t.rows = append(t.rows, row)
}

func (t *table) write(b *strings.Builder, indent string) {
	widths := make([]int, len(t.right))
	for _, row := range t.rows {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], len(c))
			}
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		line.WriteString(indent)
		for i, c := range row {
			pad := ""
			if i < len(row)-1 && i < len(widths) {
				pad = strings.Repeat(" ", widths[i]-len(c))
			}
			if i > 0 {
				line.WriteString("  ")
			}
			if i < len(t.right) && t.right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// ascii replaces everything but printable ASCII and newlines with '?', so
// interface names cannot carry terminal escapes into the report.
func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || (r >= 0x20 && r <= 0x7e) {
			return r
		}
		return '?'
	}, s)
}
