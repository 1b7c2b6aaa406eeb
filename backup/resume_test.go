package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// TestResumeStateSnapshot interrupts a state snapshot backup, resumes it (and
// interrupts the resumption too), damages one committed chunk, and resumes again:
// the final backup reuses the chunks of both earlier attempts except the damaged
// one, writes the rest, verifies completely, and lives in the first attempt's folder.
func TestResumeStateSnapshot(t *testing.T) {
	tc := newTestChain(t, 600, 2000)
	ctx := context.Background()
	v, err := backup.EpochEndVersion(ctx, tc.svc, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, sk := range stores {
		t.Run(sk.name, func(t *testing.T) {
			st, root := sk.open(t)
			// Attempt 1 fails at commit fail1 (the root proof, then chunks and proofs
			// alternate), leaving want2 chunks with their proofs; attempt 2 fails after
			// one new chunk.
			o, fail1, want2 := smallOpts, int64(8), 3
			if sk.slow && raceEnabled {
				// Three chunks in all: each file is a slow child process under -race.
				o, fail1, want2 = optsFor(sk), 6, 2
			}
			o.Concurrency = 1 // commits in item order, so the fault cuts a known prefix

			if _, _, err := backup.FindResumableStateSnapshot(ctx, st, v, time.Hour); err != nil {
				t.Fatal(err)
			}
			_, err := backup.StateSnapshot(ctx, tc.svc, failNth(st, storagetest.OpCommit, fail1), v, o)
			if !errors.Is(err, storagetest.ErrInjected) {
				t.Fatalf("attempt 1: %v", err)
			}
			folder, ok, err := backup.FindResumableStateSnapshot(ctx, st, v, time.Hour)
			if err != nil || !ok {
				t.Fatalf("no resumable folder: %v %v", ok, err)
			}
			if _, ok, _ := backup.FindResumableStateSnapshot(ctx, st, v, -time.Second); ok {
				t.Fatal("a folder older than the age limit was offered")
			}
			_, rd2, err := backup.ResumeStateSnapshot(ctx, tc.svc, failNth(st, storagetest.OpCommit, 4), folder, v, o, nil)
			if !errors.Is(err, storagetest.ErrInjected) {
				t.Fatalf("attempt 2: %v", err)
			}
			if rd2.Chunks != want2 {
				t.Fatalf("attempt 2 reused %d chunks", rd2.Chunks)
			}
			damaged := 0
			if root != "" {
				// Damage attempt 1's first chunk: same size, different bytes.
				p := filepath.Join(root, string(folder), "state-000000000000.zst")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0xff
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				damaged = 1
			}
			var calls atomic.Int64
			res, rd3, err := backup.ResumeStateSnapshot(ctx, tc.svc, st, folder, v, o, func(native.StateSnapshotChunk) { calls.Add(1) })
			if err != nil {
				t.Fatalf("attempt 3: %v", err)
			}
			if res.Backup != folder {
				t.Fatalf("resumed into %s, want %s", res.Backup, folder)
			}
			// Undamaged, attempt 3 reuses what attempt 2 reused plus attempt 2's new
			// chunks; damaged, the rest of the first work unit is written again.
			if (damaged == 0 && rd3.Chunks <= rd2.Chunks) || rd3.Chunks == 0 || int64(rd3.Chunks) != calls.Load() {
				t.Fatalf("attempt 3 reused %d chunks (callback %d), attempt 2 %d", rd3.Chunks, calls.Load(), rd2.Chunks)
			}
			r, err := st.Open(ctx, res.Metadata.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			mb, err := native.ReadLimited(r, native.MaxManifestSize, string(res.Metadata.Manifest))
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			m, err := native.DecodeStateSnapshot(mb)
			if err != nil {
				t.Fatal(err)
			}
			first := string(m.Chunks[0].Handle)
			if untagged := string(folder) + "/state-000000000000.zst"; (damaged == 1) == (first == untagged) {
				t.Fatalf("first chunk %s (damaged %d)", first, damaged)
			}
			t.Logf("reused %d chunks (%d bytes) of earlier attempts; attempt 2 reused %d", rd3.Chunks, rd3.Bytes, rd2.Chunks)
			verifyBackup(t, tc, st, res)
			if _, ok, _ := backup.FindResumableStateSnapshot(ctx, st, v, time.Hour); ok {
				t.Fatal("a completed snapshot's version is still offered for resumption")
			}
			if _, _, err := backup.ResumeStateSnapshot(ctx, tc.svc, st, folder, v, o, nil); !errors.Is(err, backup.ErrAlreadyBackedUp) {
				t.Fatalf("resuming a completed snapshot: %v", err)
			}
			if _, _, err := backup.ResumeStateSnapshot(ctx, tc.svc, st, storage.BackupHandle("../x"), v, o, nil); err == nil {
				t.Fatal("bad folder handle accepted")
			}
		})
	}
	checkNoChildren(t)
}
