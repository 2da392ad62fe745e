package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Format is an output format of Render.
type Format int

// Output formats.
const (
	FormatText Format = iota // aligned ASCII for terminals
	FormatJSON               // the schema_version 1 contract, indented
)

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatJSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the format with the given name, as given to --format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text":
		return FormatText, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("unknown output format %q (want text or json)", s)
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
