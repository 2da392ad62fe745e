package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// DecodeMergeInput reads one file merge takes: a listen file (a stamps
// record of kind ListenKind), returned as stamps, or a JSON report,
// returned as a Result (as Decode reads it; its Stamps are nil unless it
// was traced with --for-merge). A listen file, or a report's stamps, of
// another stamps_version is refused with a *SchemaError; a report as
// Decode refuses it.
func DecodeMergeInput(r io.Reader) (*Result, *Stamps, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	var head struct {
		Kind    string `json:"kind"`
		Version int    `json:"stamps_version"`
	}
	if json.Unmarshal(data, &head) == nil && head.Kind == ListenKind {
		if err := checkStampsVersion(head.Version, RecordListen); err != nil {
			return nil, nil, err
		}
		var s Stamps
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, nil, fmt.Errorf("%w: listen file: %w", ErrNotReport, err)
		}
		return nil, &s, nil
	}
	res, err := Decode(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	if res.Stamps != nil {
		if err := checkStampsVersion(res.Stamps.Version, RecordStamps); err != nil {
			return nil, nil, err
		}
	}
	return res, nil, nil
}

// checkStampsVersion returns a *SchemaError for a stamps record of
// another version than StampsVersion (0: none given), held by record.
func checkStampsVersion(v int, record string) error {
	if v != StampsVersion {
		return &SchemaError{Version: v, Record: record}
	}
	return nil
}

// EncodeStamps writes a stamps record (a listen file) as indented JSON.
func EncodeStamps(w io.Writer, s *Stamps) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("write stamps: %w", err)
	}
	return nil
}
