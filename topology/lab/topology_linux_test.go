package lab

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestUpRejectsUnknownTopology(t *testing.T) {
	_, err := Up(context.Background(), Config{Name: "cnitrace-topo00", Topology: "calico"})
	if err == nil || !strings.Contains(err.Error(), `unknown topology "calico"`) {
		t.Fatalf("Up with topology calico: %v, want an unknown topology error", err)
	}
	if errors.Is(err, os.ErrPermission) {
		t.Errorf("Up checked the topology only after touching namespaces: %v", err)
	}
}
