package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// cpuStat is the machine-wide CPU time of /proc/stat's "cpu" line, in
// seconds (USER_HZ is 100 on Linux): the whole machine, so on a shared
// one it is context, not a figure of ours. Steal is the time the
// hypervisor ran something else while a virtual CPU of ours wanted to run.
type cpuStat struct {
	User    float64 `json:"user_s"`
	System  float64 `json:"system_s"`
	SoftIRQ float64 `json:"softirq_s"`
	Steal   float64 `json:"steal_s"`
}

func (a cpuStat) sub(b cpuStat) cpuStat {
	return cpuStat{a.User - b.User, a.System - b.System, a.SoftIRQ - b.SoftIRQ, a.Steal - b.Steal}
}

// parseCPUStat reads the "cpu " line: user nice system idle iowait irq
// softirq steal ...; user counts nice too, and a kernel that does not
// count steal (no eighth field) has none.
func parseCPUStat(r io.Reader) (cpuStat, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		v := make([]float64, 9)
		for i := 1; i < min(len(f), 9); i++ {
			n, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return cpuStat{}, false
			}
			v[i] = n / 100
		}
		return cpuStat{User: v[1] + v[2], System: v[3], SoftIRQ: v[7], Steal: v[8]}, true
	}
	return cpuStat{}, false
}
