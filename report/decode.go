package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrNotReport says the input is not a cnitrace JSON report: not JSON,
// not one object, no schema_version, fields of the wrong type, or more
// data after the report. Decode wraps it with what it found.
var ErrNotReport = errors.New("not a cnitrace JSON report")

// SchemaError says a record's version is not the one this version reads:
// a report's schema_version (SchemaVersion), or the stamps_version
// (StampsVersion) of a listen file or of a report's stamps.
type SchemaError struct {
	Version int // the record's version
	// WrittenBy is the report's run.version, the cnitrace that wrote it,
	// when it says.
	WrittenBy string
	// Record is what holds the version: "" for a report's schema_version,
	// RecordListen or RecordStamps for a stamps_version.
	Record string
}

// The records of a stamps_version, for SchemaError.Record.
const (
	RecordListen = "listen file"
	RecordStamps = "report's stamps" // trace --for-merge's
)

// Reads is the version of e's record this cnitrace reads.
func (e *SchemaError) Reads() int {
	if e.Record != "" {
		return StampsVersion
	}
	return SchemaVersion
}

// Newer reports whether the record is of a later version than this
// cnitrace reads (written by a later cnitrace), not of one never written.
func (e *SchemaError) Newer() bool { return e.Version > e.Reads() }

func (e *SchemaError) Error() string {
	by := ""
	if e.WrittenBy != "" {
		by = " (written by cnitrace " + e.WrittenBy + ")"
	}
	what := fmt.Sprintf("schema_version %d%s", e.Version, by)
	if e.Record != "" {
		what = fmt.Sprintf("stamps_version %d of the %s%s", e.Version, e.Record, by)
	}
	if e.Newer() {
		return fmt.Sprintf("%s is newer than this cnitrace reads, %d", what, e.Reads())
	}
	return fmt.Sprintf("%s is not one cnitrace ever wrote; it reads %d", what, e.Reads())
}

// Decode reads one JSON report, as Render wrote it with FormatJSON, from
// r. Rendering the Result again gives what the run printed, byte for byte,
// in every format (Result.Timelines, which are not in the JSON, are nil;
// no renderer uses them). Fields it does not know are ignored, as the
// contract says. Anything but one report of schema_version SchemaVersion,
// followed by nothing but white space, is refused: ErrNotReport (wrapped)
// or a *SchemaError. An error of r itself is returned wrapped, as it is.
func Decode(r io.Reader) (*Result, error) {
	raw, err := readOne(r)
	if err != nil {
		return nil, err
	}
	return decodeReport(raw)
}

// DecodeAll reads what Decode reads, or a JSON array of such reports, as
// merge writes the reports of a run whose probes reached several
// listeners' pods (one per pod). An empty array, or an element Decode
// would refuse, is refused as Decode refuses it, naming the element.
func DecodeAll(r io.Reader) ([]*Result, error) {
	raw, err := readOne(r)
	if err != nil {
		return nil, err
	}
	if raw[0] != '[' {
		res, err := decodeReport(raw)
		if err != nil {
			return nil, err
		}
		return []*Result{res}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReport, err)
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("%w: the input is an empty array", ErrNotReport)
	}
	out := make([]*Result, len(elems))
	for i, e := range elems {
		res, err := decodeReport(e)
		if err != nil {
			return nil, fmt.Errorf("report %d of %d: %w", i+1, len(elems), err)
		}
		out[i] = res
	}
	return out, nil
}

// readOne reads one JSON value from r, and nothing after it but white
// space.
func readOne(r io.Reader) (json.RawMessage, error) {
	dec := json.NewDecoder(r)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var syntax *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: the input is empty", ErrNotReport)
		case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%w: %w", ErrNotReport, err)
		}
		return nil, fmt.Errorf("read report: %w", err) // the reader's own error
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more data after the report, at byte %d", ErrNotReport, dec.InputOffset())
	}
	return raw, nil
}

// decodeReport decodes one report object of schema_version SchemaVersion.
func decodeReport(raw json.RawMessage) (*Result, error) {
	if err := checkSchema(raw); err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReport, err)
	}
	return &res, nil
}

// checkSchema checks that raw is an object with the schema_version this
// version reads, before the rest of it is decoded: a report of another
// version may not fit the Result.
func checkSchema(raw json.RawMessage) error {
	if raw[0] != '{' {
		return fmt.Errorf("%w: the input is JSON %s, not an object", ErrNotReport, jsonKind(raw[0]))
	}
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("%w: schema_version is not a whole number", ErrNotReport)
	}
	if head.SchemaVersion == nil {
		return fmt.Errorf("%w: the object has no schema_version", ErrNotReport)
	}
	if v := *head.SchemaVersion; v != SchemaVersion {
		var run struct {
			Run struct {
				Version string `json:"version"`
			} `json:"run"`
		}
		_ = json.Unmarshal(raw, &run) // best effort: it only completes the message
		return &SchemaError{Version: v, WrittenBy: run.Run.Version}
	}
	return nil
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
