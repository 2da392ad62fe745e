package report

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
)

// jsonNames returns the JSON field names of struct type t.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// TestPointSchemaIsTopologys: a point in the report has every field a
// point of `path --format json` has (topology.Point), under the same name,
// and carries its value: one point schema, the report's adding only what
// the run measured there.
func TestPointSchemaIsTopologys(t *testing.T) {
	have := map[string]bool{}
	for _, n := range jsonNames(reflect.TypeFor[Point]()) {
		have[n] = true
	}
	for _, n := range jsonNames(reflect.TypeFor[topology.Point]()) {
		if !have[n] {
			t.Errorf("report.Point has no JSON field %q, which topology.Point has", n)
		}
	}
	path := flannelPath()
	for i, p := range points(path, nil) {
		want := path.Points[i]
		if p.TunnelPort != want.TunnelPort || p.Ifindex != want.Ifindex || p.Kind != string(want.Kind) {
			t.Errorf("point %s: got %+v, want the fields of %+v", p.ID, p, want)
		}
	}
}
