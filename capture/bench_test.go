package capture

import (
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// BenchmarkDecode is the per-packet cost of turning a captured frame into
// an Observation, for a plain and a VXLAN-encapsulated probe.
func BenchmarkDecode(b *testing.B) {
	frames := map[string][]byte{"plain": plainRequest(), "vxlan": vxlanRequest(PortVXLANLinux, 5, 5)}
	for name, frame := range frames {
		b.Run(name, func(b *testing.B) {
			d := NewDecoderFor(LinkEthernet, nil)
			m := Meta{Point: "p0", At: time.Unix(0, 0), Stamp: StampCopy}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(frame, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFilter runs the probe filter in x/net/bpf's interpreter: an
// upper bound of what the kernel's JIT spends on every packet of a point.
func BenchmarkFilter(b *testing.B) {
	prog, err := FilterFor(LinkEthernet, testMagic, nil)
	if err != nil {
		b.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		b.Fatal(err)
	}
	frame := vxlanRequest(PortVXLANLinux, 5, 5)
	for b.Loop() {
		if n, err := vm.Run(frame); err != nil || n == 0 {
			b.Fatalf("filter rejected a probe: %d, %v", n, err)
		}
	}
}
