package cri

import (
	"encoding/json"
	"fmt"
)

// infoKey is the key of the verbose PodSandboxStatus info map under which
// containerd and CRI-O put their JSON document.
const infoKey = "info"

// sandboxInfo is what FindPod reads from the verbose info.
type sandboxInfo struct {
	pid       int    // 0 when not reported
	netnsPath string // "" when the spec names no network namespace
}

// verboseInfo is the part of the runtimes' verbose info document that
// FindPod reads. containerd (pkg/cri/server/sandbox_status.go, SandboxInfo)
// has "pid" and "runtimeSpec"; CRI-O (server/sandbox_status.go) only
// "runtimeSpec". The spec is an OCI runtime spec; only its Linux
// namespaces matter here.
type verboseInfo struct {
	Pid         int `json:"pid"`
	RuntimeSpec *struct {
		Linux *struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// parseInfo reads the sandbox's pid and network namespace path from the
// verbose info map of a PodSandboxStatus response. A map without the info
// document (a runtime that gives no verbose info) yields zero values; a
// document that is not JSON, or has a negative pid, is an error.
func parseInfo(info map[string]string) (sandboxInfo, error) {
	doc, ok := info[infoKey]
	if !ok {
		return sandboxInfo{}, nil
	}
	var v verboseInfo
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return sandboxInfo{}, fmt.Errorf("parse verbose info: %w", err)
	}
	if v.Pid < 0 {
		return sandboxInfo{}, fmt.Errorf("parse verbose info: pid %d is negative", v.Pid)
	}
	si := sandboxInfo{pid: v.Pid}
	if v.RuntimeSpec != nil && v.RuntimeSpec.Linux != nil {
		for _, ns := range v.RuntimeSpec.Linux.Namespaces {
			if ns.Type == "network" {
				si.netnsPath = ns.Path
			}
		}
	}
	return si, nil
}
