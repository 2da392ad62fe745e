package lab

import (
	"errors"
	"testing"
)

func TestDownWithoutLab(t *testing.T) {
	name, err := resolveName(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Down(name); !errors.Is(err, ErrNoLab) {
		t.Errorf("Down(%s) of a lab never built = %v, want ErrNoLab", name, err)
	}
	if err := Down("../etc"); err == nil || errors.Is(err, ErrNoLab) {
		t.Errorf("Down(../etc) = %v, want an invalid-name error", err)
	}
}
