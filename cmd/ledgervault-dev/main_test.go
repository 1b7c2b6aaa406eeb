package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// TestBenchFaultsUsage checks that a bad --backend, --rate or --lease-rate of
// bench-faults is a usage error (exit 2) naming the flag, before anything runs.
func TestBenchFaultsUsage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ledgervault")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for flag, args := range map[string][]string{
		"--backend":    {"--backend", "local"},
		"--rate":       {"--rate", "0"},
		"--lease-rate": {"--lease-rate", "1.5"},
		"--duration":   {"--duration", "-1s"},
	} {
		cmd := newBenchFaultsCmd()
		cmd.SetArgs(append([]string{"--ledgervault", bin}, args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(context.Background())
		var ee *cli.ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), flag) {
			t.Errorf("bench-faults %v: %v, want a usage error naming %s", args, err, flag)
		}
	}
}
