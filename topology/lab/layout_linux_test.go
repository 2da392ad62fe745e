package lab

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestUpRejectsUnknownLayout(t *testing.T) {
	_, err := Up(context.Background(), Config{Name: "cnitrace-topo00", Layout: "calico"})
	if err == nil || !strings.Contains(err.Error(), `unknown layout "calico"`) {
		t.Fatalf("Up with layout calico: %v, want an unknown layout error", err)
	}
	if errors.Is(err, os.ErrPermission) {
		t.Errorf("Up checked the layout only after touching namespaces: %v", err)
	}
}
