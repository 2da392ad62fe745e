package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSourceNamesPod: a source found through the runtime (--pod) is named
// in the text header before its interface, and in the JSON's source; a
// source without a pod renders as before, with no new JSON fields.
func TestSourceNamesPod(t *testing.T) {
	src := Source{NetNS: "net:[4026532301]", Interface: "eth0", Addr: "10.244.1.16"}
	tests := []struct {
		name       string
		pod        string
		sandbox    string
		hostNet    bool
		wantHeader string
		wantJSON   string
	}{
		{"no pod", "", "", false, "from eth0@net:[4026532301] (10.244.1.16):", `"source":{"netns":"net:[4026532301]","interface":"eth0","addr":"10.244.1.16"}`},
		{"pod", "default/web", "f914fe16d2dd902e322912dbe8357413", false,
			"from pod default/web (sandbox f914fe16d2dd9) eth0@net:[4026532301] (10.244.1.16):",
			`"pod":"default/web","sandbox_id":"f914fe16d2dd902e322912dbe8357413"}`},
		{"hostNetwork pod", "kube-system/agent", "0a1b", true,
			"from hostNetwork pod kube-system/agent (sandbox 0a1b) eth0@net:[4026532301] (10.244.1.16):",
			`"sandbox_id":"0a1b","host_network":true}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := src
			s.Pod, s.SandboxID, s.HostNetwork = tc.pod, tc.sandbox, tc.hostNet
			r := &Result{SchemaVersion: 1, Target: "10.244.2.2", Source: s}
			var b bytes.Buffer
			if err := Render(&b, r, FormatText); err != nil {
				t.Fatal(err)
			}
			if header, _, _ := strings.Cut(b.String(), "\n"); !strings.Contains(header, tc.wantHeader) {
				t.Errorf("got header %q, want it to contain %q", header, tc.wantHeader)
			}
			j, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(j), tc.wantJSON) {
				t.Errorf("got JSON %s, want it to contain %s", j, tc.wantJSON)
			}
		})
	}
}
