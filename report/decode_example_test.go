package report_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/cnitrace/cnitrace/report"
)

// DecodeAll reads one saved report, or the JSON array merge writes of a
// run whose probes reached several listeners' pods, one report each.
func ExampleDecodeAll() {
	one, err := os.ReadFile("../testdata/report-flannel.golden.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range [][]byte{one, []byte("[" + string(one) + "," + string(one) + "]"), []byte("[]")} {
		rs, err := report.DecodeAll(bytes.NewReader(in))
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Printf("%d report(s), the first of %d probes to %s\n", len(rs), rs[0].Probes.Sent, rs[0].Target)
	}
	// Output:
	// 1 report(s), the first of 30 probes to 10.244.2.2
	// 2 report(s), the first of 30 probes to 10.244.2.2
	// refused: not a cnitrace JSON report: the input is an empty array
}
