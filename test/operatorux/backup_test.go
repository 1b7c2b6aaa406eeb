package operatorux_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/internal/testbin"
	"github.com/ledgervault/ledgervault/internal/testchain"
)

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// backupFolders returns the backup folders in the local store dir and the
// metadata files.
func backupFolders(t *testing.T, dir string) (folders, metadata []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "metadata" {
			folders = append(folders, e.Name())
		}
	}
	ms, err := os.ReadDir(filepath.Join(dir, "metadata"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, m := range ms {
		metadata = append(metadata, m.Name())
	}
	return folders, metadata
}

// TestOneOffBackupUnreachableServiceLeavesNothing: every one-off backup contacts
// the service before it creates its folder, so an unreachable address fails and
// leaves no backup folder (and no metadata).
func TestOneOffBackupUnreachableServiceLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	addr := closedAddr(t)
	for name, args := range map[string][]string{
		"epoch-ending from 0": {"epoch-ending", "--start-epoch", "0", "--end-epoch", "3"},
		"epoch-ending from 2": {"epoch-ending", "--start-epoch", "2", "--end-epoch", "3"},
		"state-snapshot":      {"state-snapshot", "--version", "10"},
		"transaction":         {"transaction", "--start-version", "0", "--num-transactions", "10"},
	} {
		t.Run(name, func(t *testing.T) {
			store := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			r := testbin.Run(t, dir, append(append([]string{"backup"}, args...), "--backup-service-address", addr,
				"--storage", "file://"+store, "--progress", "none")...)
			if r.Code != 1 || !strings.Contains(r.Stderr, "connection refused") {
				t.Fatalf("exit %d, want 1 (connection refused): %s", r.Code, r.Stderr)
			}
			if folders, metadata := backupFolders(t, store); len(folders)+len(metadata) > 0 {
				t.Fatalf("an unreachable service left folders %v and metadata %v", folders, metadata)
			}
		})
	}
}

// TestEpochEndingBeyondNode: --end-epoch past the epochs the node has ended is an
// error that names the range asked for and the epochs the node has, never a range
// the operator did not give, and creates no folder; a range within the node's is
// backed up as given.
func TestEpochEndingBeyondNode(t *testing.T) {
	dir := t.TempDir()
	c := testchain.New(t, chainCfg, lastVersion, testchain.Options{ReadTimeout: 30 * time.Second})
	ds, err := c.Service.DBState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ended, err := backup.EndedEpochs(ds)
	if err != nil || ended < 2 {
		t.Fatalf("ended epochs %d, %v: want at least 2", ended, err)
	}
	store := filepath.Join(dir, "store")
	common := []string{"--backup-service-address", c.Addr, "--storage", "file://" + store, "--progress", "none"}
	for _, start := range []string{"0", "1"} {
		r := testbin.Run(t, dir, append([]string{"backup", "epoch-ending", "--start-epoch", start, "--end-epoch", "99999"}, common...)...)
		asked := "[" + start + ", 99999)"
		has := "[0, " + strconv.FormatUint(ended, 10) + ")"
		if r.Code != 1 || !strings.Contains(r.Stderr, asked) || !strings.Contains(r.Stderr, "the node has ended epochs "+has) {
			t.Fatalf("--start-epoch %s --end-epoch 99999: exit %d, want 1 naming %s and %s: %s", start, r.Code, asked, has, r.Stderr)
		}
		for _, rng := range regexp.MustCompile(`\[\d+, \d+\)`).FindAllString(r.Stderr, -1) {
			if rng != asked && rng != has {
				t.Fatalf("the message names the range %s, which is neither the one asked for (%s) nor the node's (%s): %s", rng, asked, has, r.Stderr)
			}
		}
		if folders, metadata := backupFolders(t, store); len(folders)+len(metadata) > 0 {
			t.Fatalf("a range beyond the node left folders %v and metadata %v", folders, metadata)
		}
	}
	end := strconv.FormatUint(ended, 10)
	ok(t, dir, append([]string{"backup", "epoch-ending", "--start-epoch", "0", "--end-epoch", end}, common...)...)
	r := ok(t, dir, "list", "--storage", "file://"+store)
	if !strings.Contains(r.Stdout, "epoch_ending") && !strings.Contains(r.Stdout, "epoch-ending") {
		t.Fatalf("list after the backup of [0, %s): %s", end, r.Stdout)
	}
}
