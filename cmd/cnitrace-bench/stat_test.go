package main

import (
	"strings"
	"testing"
)

func TestParseCPUStat(t *testing.T) {
	in := "cpu  1000 50 300 90000 10 0 25 40 0 0\ncpu0 500 25 150 45000 5 0 12 20 0 0\nintr 1\n"
	got, ok := parseCPUStat(strings.NewReader(in))
	if want := (cpuStat{User: 10.5, System: 3, SoftIRQ: 0.25, Steal: 0.4}); !ok || got != want {
		t.Errorf("got %+v, %v; want %+v", got, ok, want)
	}
	// A kernel that counts no steal.
	got, ok = parseCPUStat(strings.NewReader("cpu  1000 50 300 90000 10 0 25\n"))
	if want := (cpuStat{User: 10.5, System: 3, SoftIRQ: 0.25}); !ok || got != want {
		t.Errorf("no steal field: got %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := parseCPUStat(strings.NewReader("intr 1\n")); ok {
		t.Error("no cpu line: got ok")
	}
}
