package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzMerge feeds merge a listen file made of the fuzz bytes, starting from
// a real one: whatever it holds, DecodeMergeInput and Merge return an error
// or reports that render, and never panic.
func FuzzMerge(f *testing.F) {
	s := twoNodes{n: 4, interval: 10 * time.Millisecond, offset: time.Second, segs: func(int) []time.Duration { return baseSegs() },
		drop: func(seq, k int) bool { return seq == 2 && k > 6 }}
	src, ls := s.record(f)
	var b strings.Builder
	if err := EncodeStamps(&b, ls["10.244.2.2"]); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(b.String()))
	f.Add([]byte(strings.Replace(b.String(), `"p4"`, `"p9"`, 1)))
	f.Add([]byte(`{"kind": "cnitrace-listen", "stamps_version": 1, "role": "listen", "path": {"points": [{"id": "p0"}]}, "steps": [{"point": "p0"}, {"point": "p0", "reply": true}], "runs": [{"run_id": "1122334455667788", "probes": [{"seq": 0, "at": [1, 0]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, st, err := DecodeMergeInput(bytes.NewReader(data))
		if err != nil || st == nil {
			return
		}
		rs, err := Merge(src, st)
		if err != nil {
			return
		}
		for _, r := range rs {
			for _, format := range Formats() {
				var out bytes.Buffer
				if err := Render(&out, r, format); err != nil {
					t.Fatalf("render %s: %v", format, err)
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatal(err)
			}
		}
	})
}
