//go:build linux

package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

type machine struct {
	Kernel   string `json:"kernel"`
	CPUs     int    `json:"cpus"`
	Model    string `json:"cpu_model,omitempty"`
	MemoryMB int    `json:"memory_mb,omitempty"`
	Go       string `json:"go"`
}

// commit says what was measured: the binary's embedded VCS stamp (what
// the figures are of) and the checkout the benchmark ran from.
type commit struct {
	Binary         string `json:"binary"`          // the path given with --bin
	BinaryRevision string `json:"binary_revision"` // vcs.revision of the binary (go version -m)
	BinaryModified bool   `json:"binary_modified"` // built from a tree with uncommitted changes
	BinaryTime     string `json:"binary_vcs_time,omitempty"`
	BinaryGo       string `json:"binary_go,omitempty"`
	Checkout       string `json:"checkout_revision,omitempty"` // git rev-parse HEAD where the bench ran
}

func (c commit) short() string {
	r := c.BinaryRevision
	if len(r) > 12 {
		r = r[:12]
	}
	if r == "" {
		r = "unknown"
	}
	if c.BinaryModified {
		r += "+dirty"
	}
	return r
}

func thisMachine() machine {
	var u syscall.Utsname
	syscall.Uname(&u)
	var kernel strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		kernel.WriteByte(byte(c))
	}
	m := machine{Kernel: kernel.String(), CPUs: runtime.NumCPU(), Go: runtime.Version()}
	m.Model = procField("/proc/cpuinfo", "model name")
	var kb int
	if _, err := fmt.Sscanf(procField("/proc/meminfo", "MemTotal"), "%d", &kb); err == nil {
		m.MemoryMB = kb / 1024
	}
	return m
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// whatWasMeasured reads bin's build info and the checkout's HEAD.
func whatWasMeasured(bin string) commit {
	c := commit{Binary: bin}
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		c.BinaryGo = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				c.BinaryRevision = s.Value
			case "vcs.modified":
				c.BinaryModified = s.Value == "true"
			case "vcs.time":
				c.BinaryTime = s.Value
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		c.Checkout = strings.TrimSpace(string(out))
	}
	return c
}

// privateCopy copies the binary under test into dir, so that a rebuild of
// bin/ by someone else during the run does not change what is measured.
func privateCopy(bin, dir string) (string, error) {
	src, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer src.Close()
	path := filepath.Join(dir, "cnitrace")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	return path, dst.Close()
}

// loadAvg is the first three fields of /proc/loadavg: how busy the shared
// machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
