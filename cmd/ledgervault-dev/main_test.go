package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/internal/cli"
)

func TestResolveBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ledgervault")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := resolveBinary(bin)
	if err != nil || got != bin {
		t.Fatalf("resolveBinary(%q) = %q, %v", bin, got, err)
	}
	_, err = resolveBinary(filepath.Join(t.TempDir(), "absent"))
	var ee *cli.ExitError
	if !errors.As(err, &ee) || ee.Code != 2 {
		t.Fatalf("absent --ledgervault: %v, want a usage error (exit 2)", err)
	}
}
