package cri

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestHostPath(t *testing.T) {
	root := t.TempDir()
	mkdir := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("run/netns")
	mkdir("var/lib")
	mkdir("proc/42/ns")
	link("/run", "var/run")               // absolute: inside root, not this machine's /run
	link("../run/netns", "var/lib/netns") // relative
	link("/loop/a", "loop")
	link("net:[4026532301]", "proc/42/ns/net") // the last element is never followed
	tests := []struct{ root, path, want string }{
		{"/", "/var/run/netns/x", "/var/run/netns/x"},
		{"", "run//netns/../netns/x", "/run/netns/x"},
		{root, "/var/run/netns/cni-1", root + "/run/netns/cni-1"},
		{root, "/var/lib/netns/cni-1", root + "/run/netns/cni-1"},
		{root, "/proc/42/ns/net", root + "/proc/42/ns/net"},
		{root, "/missing/dir/x", root + "/missing/dir/x"},
		{root, "/../../etc/x", root + "/etc/x"},
		{root, "/loop/x", root + "/loop/x"}, // a link loop: joined as given
	}
	for _, tt := range tests {
		if got := HostPath(tt.root, tt.path); got != tt.want {
			t.Errorf("HostPath(%q, %q) = %q, want %q", tt.root, tt.path, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"web", "", 3}, {"", "web", 3}, {"web", "web", 0}, {"web", "wbe", 2}, {"default/web", "default/web-0", 2}, {"kitten", "sitting", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseInfo(t *testing.T) {
	tests := []struct {
		name    string
		info    map[string]string
		want    sandboxInfo
		wantErr bool
	}{
		{"no verbose info", nil, sandboxInfo{}, false},
		{"containerd shape", map[string]string{"info": `{"pid":12,"runtimeSpec":{"linux":{"namespaces":[{"type":"network","path":"/run/netns/a"}]}}}`}, sandboxInfo{12, "/run/netns/a"}, false},
		{"CRI-O shape", map[string]string{"info": `{"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/b"}]}}}`}, sandboxInfo{0, "/var/run/netns/b"}, false},
		{"no spec", map[string]string{"info": `{"pid":12}`}, sandboxInfo{12, ""}, false},
		{"spec without linux", map[string]string{"info": `{"runtimeSpec":{}}`}, sandboxInfo{}, false},
		{"not JSON", map[string]string{"info": `pid=12`}, sandboxInfo{}, true},
		{"pid not a number", map[string]string{"info": `{"pid":"12"}`}, sandboxInfo{}, true},
		{"negative pid", map[string]string{"info": `{"pid":-1}`}, sandboxInfo{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInfo(tt.info)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseInfo(f *testing.F) {
	for _, seed := range []string{"testdata/containerd-1.6.20-info.json", "testdata/crio-info.json", "testdata/containerd-1.6.20-hostnetwork-info.json"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`{"pid":-3}`)
	f.Fuzz(func(t *testing.T, doc string) {
		si, err := parseInfo(map[string]string{"info": doc})
		if err == nil && si.pid < 0 {
			t.Errorf("parseInfo(%q) accepted pid %d", doc, si.pid)
		}
	})
}

func TestClosest(t *testing.T) {
	var all []*runtimeapi.PodSandbox
	for _, n := range []string{"default/web-7c9d8f5b4-x2x9k", "default/wbe", "default/database", "prod/web", "staging/web", "defualt/web", "default/api"} {
		ns, name, _ := strings.Cut(n, "/")
		all = append(all, &runtimeapi.PodSandbox{Metadata: &runtimeapi.PodSandboxMetadata{Namespace: ns, Name: name}})
	}
	for _, tt := range []struct {
		namespace, name string
		want            []string
	}{
		{"default", "web", []string{"defualt/web", "prod/web", "staging/web"}},
		{"default", "web-7c9d8f5b4", []string{"default/web-7c9d8f5b4-x2x9k"}},
		{"default", "apj", []string{"default/api"}},
		{"default", "nothing-like-it", nil},
	} {
		if got := closest(tt.namespace, tt.name, all); !slices.Equal(got, tt.want) {
			t.Errorf("closest(%s/%s) = %q, want %q", tt.namespace, tt.name, got, tt.want)
		}
	}
}
