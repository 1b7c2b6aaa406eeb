// Package aptosverify_test runs `ledgervault verify` on the real aptos-libra7 store in
// shared/corpora (through its own epoch-archive.yaml and through file://) and on copies
// it tampers with, the gzip layer rebuilt so that only the content checks can catch it.
package aptosverify_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptosverify"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "lv-aptosverify-test") }

// result is one run of the binary.
type result = testbin.Result

// lv runs the binary with args in dir.
func lv(t *testing.T, dir string, args ...string) result { return testbin.Run(t, dir, args...) }

// store is a copy (or the original) of aptos-libra7: root is its snapshots/ folder.
type store struct {
	root, config, waypoint string
}

func original(t *testing.T) store {
	t.Helper()
	root, config, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err) // a missing corpus is a broken checkout
	}
	return store{root: root, config: config, waypoint: filepath.Join(root, "..", "genesis", "waypoint.txt")}
}

// copyStore copies aptos-libra7 (snapshots, config, genesis) into a temporary folder.
func copyStore(t *testing.T) store {
	t.Helper()
	o := original(t)
	dst := t.TempDir()
	if err := corpora.CopyTree(filepath.Dir(o.root), dst); err != nil {
		t.Fatal(err)
	}
	return store{root: filepath.Join(dst, "snapshots"), config: filepath.Join(dst, "epoch-archive.yaml"), waypoint: filepath.Join(dst, "genesis", "waypoint.txt")}
}

// verifyJSON runs verify --json through the command adapter (from snapshots/, as the
// config expects) or through file://, and decodes the report.
func verifyJSON(t *testing.T, s store, adapter bool, wantCode int, extra ...string) (*aptosverify.Report, result) {
	t.Helper()
	args := []string{"verify", "--json"}
	if adapter {
		args = append(args, "--command-config", s.config)
	} else {
		args = append(args, "--storage", "file://"+s.root)
	}
	if len(extra) == 0 {
		extra = []string{"--waypoint-file", s.waypoint}
	}
	r := lv(t, s.root, append(args, extra...)...)
	if r.Code != wantCode {
		t.Fatalf("verify exit %d, want %d\nstdout: %.2000s\nstderr: %.4000s", r.Code, wantCode, r.Stdout, r.Stderr)
	}
	var rep aptosverify.Report
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, r.Stdout)
	}
	return &rep, r
}

// checkAsPublished asserts the verdict on aptos-libra7 as published.
func checkAsPublished(t *testing.T, rep *aptosverify.Report) {
	t.Helper()
	if rep.EpochEndings != 210 || rep.Signatures != 209 || rep.StateRootProofs != 3 || rep.Transactions != 60000 || rep.MissingFiles != 4 {
		t.Fatalf("endings %d signatures %d root proofs %d transactions %d missing %d", rep.EpochEndings, rep.Signatures, rep.StateRootProofs, rep.Transactions, rep.MissingFiles)
	}
	if rep.Domain != "DIEM::" || rep.OK {
		t.Fatalf("domain %q ok %v", rep.Domain, rep.OK)
	}
	epochs := map[string]bool{}
	var missing []string
	for _, row := range rep.Rows {
		for _, h := range row.Missing {
			missing = append(missing, string(h))
		}
		switch row.Type {
		case "epoch_ending":
			if row.Status != aptosverify.StatusVerified || !row.OK || row.Files != 2 {
				t.Fatalf("epoch row %+v", row)
			}
			epochs[row.Range] = true
		case "state_snapshot":
			if row.Status != aptosverify.StatusIncomplete || len(row.Missing) != 1 || !strings.HasSuffix(string(row.Missing[0]), "/0-.chunk") ||
				!strings.Contains(row.Error, "the proven part passed") {
				t.Fatalf("state row %+v", row)
			}
		case "transaction":
			want := aptosverify.StatusVerified
			if row.Range == "versions 0-0" {
				want = aptosverify.StatusIncomplete
				if len(row.Missing) != 1 || row.Missing[0] != "transaction_0-.b220/0-.chunk" {
					t.Fatalf("genesis transaction row %+v", row)
				}
			} else if row.Detail != "20000 transactions verified" {
				t.Fatalf("transaction row %+v", row)
			}
			if row.Status != want {
				t.Fatalf("transaction row %+v", row)
			}
		default:
			t.Fatalf("unexpected row %+v", row)
		}
	}
	for e := 0; e <= 209; e++ {
		if !epochs[fmt.Sprintf("epochs %d-%d", e, e)] {
			t.Fatalf("no verified row for epoch %d", e)
		}
	}
	if len(rep.Rows) != 210+3+4 || len(missing) != 4 {
		t.Fatalf("%d rows, missing %v", len(rep.Rows), missing)
	}
	t.Logf("%d endings (%d signatures, %d signer keys) in %s, %d transactions in %s, missing %v",
		rep.EpochEndings, rep.Signatures, rep.SignerKeys, rep.ChainElapsed, rep.Transactions, rep.TransactionsElapsed, missing)
}

// TestVerifyAsPublished verifies aptos-libra7 through the operator's own
// epoch-archive.yaml (run from snapshots/), trusting only genesis/waypoint.txt: every
// ending 0-209, the three state roots, transactions 1-60000; the four unpublished files
// are reported missing and the exit status says "not fully verified" (3), not failed.
func TestVerifyAsPublished(t *testing.T) {
	rep, r := verifyJSON(t, original(t), true, 3)
	checkAsPublished(t, rep)
	if !strings.Contains(r.Stderr, "not fully verified") || strings.Contains(r.Stderr, "verification failed") {
		t.Fatalf("stderr: %s", r.Stderr)
	}
}

// TestVerifyThroughFile reads the same store through file://, where the gzip layer the
// operator's config wrote is visible and removed by format/backupcli; the waypoint is
// given as --trust-waypoint in the aptos form with a 0x prefix.
func TestVerifyThroughFile(t *testing.T) {
	o := original(t)
	b, err := os.ReadFile(o.waypoint)
	if err != nil {
		t.Fatal(err)
	}
	v, h, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	rep, _ := verifyJSON(t, o, false, 3, "--trust-waypoint", v+":0x"+h, "--format", "backupcli")
	checkAsPublished(t, rep)
}

// TestVerifyDiemNotChecked: a Diem 1.x store is reported as a generation verify does
// not check cryptographically, never as verified.
func TestVerifyDiemNotChecked(t *testing.T) {
	root, err := corpora.Diem("14")
	if err != nil {
		t.Fatal(err)
	}
	r := lv(t, root, "verify", "--json", "--storage", "file://"+root, "--trust-waypoint", "9033487:0b009ca72d8a1e69227bc0836a38687ddce46339e8ca89491617590968aa3ed7")
	if r.Code != 3 {
		t.Fatalf("exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	var rep aptosverify.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.EpochEndings != 0 || rep.Transactions != 0 || len(rep.Rows) != 2 {
		t.Fatalf("%+v", rep)
	}
	for _, row := range rep.Rows {
		if row.OK || row.Status != aptosverify.StatusNotChecked {
			t.Fatalf("row %+v", row)
		}
	}
	if !strings.Contains(rep.Rows[0].Error, "Diem 1.x") || !strings.Contains(rep.Rows[0].Error, "not checked cryptographically") {
		t.Fatalf("row %+v", rep.Rows[0])
	}
}

// TestVerifyUsage: a missing or malformed waypoint and a bad --format are usage errors.
func TestVerifyUsage(t *testing.T) {
	o := original(t)
	for _, args := range [][]string{
		{"verify", "--command-config", o.config},
		{"verify", "--command-config", o.config, "--trust-waypoint", "zero:abc"},
		{"verify", "--command-config", o.config, "--waypoint-file", o.waypoint, "--format", "tar"},
	} {
		r := lv(t, o.root, args...)
		if r.Code != 2 {
			t.Fatalf("%v: exit %d\n%s", args, r.Code, r.Stderr)
		}
	}
}

// --- tampering ---

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewrite replaces a corpus file's content, rebuilding its gzip layer.
func rewrite(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b := edit(gunzip(t, path))
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	z.Write(b)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func glob1(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("glob %s: %v %v", pattern, m, err)
	}
	return m[0]
}

// frames splits a chunk into its records (big-endian u32 length each).
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		n := int(binary.BigEndian.Uint32(b))
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func join(recs [][]byte) []byte {
	var out []byte
	for _, r := range recs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(r)))
		out = append(out, r...)
	}
	return out
}

// editEnding rewrites the single ledger info of epoch e's chunk; it returns the handle.
func editEnding(t *testing.T, s store, e int, edit func(rec []byte, li *aptos.LedgerInfoWithSignatures) []byte) string {
	t.Helper()
	path := glob1(t, filepath.Join(s.root, fmt.Sprintf("epoch_ending_%d-.*", e), fmt.Sprintf("%d-.chunk", e)))
	rewrite(t, path, func(b []byte) []byte {
		recs := frames(t, b)
		li, err := aptos.DecodeLedgerInfoWithSignatures(recs[0])
		if err != nil {
			t.Fatal(err)
		}
		recs[0] = edit(bytes.Clone(recs[0]), li)
		return join(recs)
	})
	rel, _ := filepath.Rel(s.root, path)
	return rel
}

// bitmaskAt returns the offset of the signature bitmask in a ledger info record: the
// record ends in bitmask, Some(signature): [len][bitmask][1][0x60][96 bytes].
func bitmaskAt(t *testing.T, rec []byte, li *aptos.LedgerInfoWithSignatures) int {
	t.Helper()
	at := len(rec) - aptos.SignatureLen - 2 - len(li.Signatures.Bitmask)
	if !bytes.Equal(rec[at:at+len(li.Signatures.Bitmask)], li.Signatures.Bitmask) {
		t.Fatal("bitmask not where expected")
	}
	return at
}

// validators returns the validator set epoch e's ending announces.
func validators(t *testing.T, s store, e int) []aptos.ValidatorInfo {
	t.Helper()
	path := glob1(t, filepath.Join(s.root, fmt.Sprintf("epoch_ending_%d-.*", e), fmt.Sprintf("%d-.chunk", e)))
	li, err := aptos.DecodeLedgerInfoWithSignatures(frames(t, gunzip(t, path))[0])
	if err != nil {
		t.Fatal(err)
	}
	return li.LedgerInfo.CommitInfo.NextEpochState.Validators
}

// failedRow returns the one failed row and checks that its error names file.
func failedRow(t *testing.T, rep *aptosverify.Report, file string) aptosverify.Row {
	t.Helper()
	var failed []aptosverify.Row
	for _, row := range rep.Rows {
		if row.Status == aptosverify.StatusFailed {
			failed = append(failed, row)
		}
		if row.Status == aptosverify.StatusVerified && strings.Contains(row.Error+row.Detail, file) {
			t.Fatalf("row naming %s verified: %+v", file, row)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error+" "+string(failed[0].Manifest), file) {
		t.Fatalf("want one failed row naming %s, got %+v", file, failed)
	}
	t.Logf("%s: %s", failed[0].Range, failed[0].Error)
	return failed[0]
}

// TestTamperEpochChain: each damage to the signed epoch chain fails verify (exit 1)
// naming the file, and nothing after it is called verified.
func TestTamperEpochChain(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, s store) (file string, extra []string)
	}{
		{"aggregate signature bit", func(t *testing.T, s store) (string, []string) {
			return editEnding(t, s, 100, func(rec []byte, _ *aptos.LedgerInfoWithSignatures) []byte {
				rec[len(rec)-10] ^= 0x04
				return rec
			}), nil
		}},
		{"bitmask claims a signer who did not sign", func(t *testing.T, s store) (string, []string) {
			// Find an ending whose bitmask leaves out a validator of its set, and add it.
			for e := 1; e <= 209; e++ {
				set := validators(t, s, e-1)
				path := glob1(t, filepath.Join(s.root, fmt.Sprintf("epoch_ending_%d-.*", e), fmt.Sprintf("%d-.chunk", e)))
				li, err := aptos.DecodeLedgerInfoWithSignatures(frames(t, gunzip(t, path))[0])
				if err != nil {
					t.Fatal(err)
				}
				if n := len(li.Signatures.Signers()); n == len(set) {
					continue
				}
				return editEnding(t, s, e, func(rec []byte, li *aptos.LedgerInfoWithSignatures) []byte {
					at := bitmaskAt(t, rec, li)
					signed := map[int]bool{}
					for _, i := range li.Signatures.Signers() {
						signed[i] = true
					}
					for i := range set {
						if !signed[i] {
							rec[at+i/8] |= 0x80 >> (i % 8)
							t.Logf("epoch %d: bit of validator %d of %d set", e, i, len(set))
							return rec
						}
					}
					t.Fatal("no non-signer")
					return nil
				}), nil
			}
			t.Fatal("every ending is signed by its whole validator set: no non-signer to claim")
			return "", nil
		}},
		{"signers below quorum", func(t *testing.T, s store) (string, []string) {
			return editEnding(t, s, 150, func(rec []byte, li *aptos.LedgerInfoWithSignatures) []byte {
				at := bitmaskAt(t, rec, li)
				signers := li.Signatures.Signers()
				for _, i := range signers[1:] { // keep one signer of several
					rec[at+i/8] &^= 0x80 >> (i % 8)
				}
				t.Logf("epoch 150: %d signers cut to 1", len(signers))
				return rec
			}), nil
		}},
		{"voting power raised", func(t *testing.T, s store) (string, []string) {
			// Raise a validator's power in the set epoch 120 announces, and give the
			// manifest the new waypoint so that only the signatures can catch it.
			var newWP aptos.Waypoint
			file := editEnding(t, s, 120, func(rec []byte, li *aptos.LedgerInfoWithSignatures) []byte {
				v := li.LedgerInfo.CommitInfo.NextEpochState.Validators[0]
				key := append([]byte{byte(len(v.PublicKey))}, v.PublicKey...)
				at := bytes.Index(rec, key)
				if at < 0 || binary.LittleEndian.Uint64(rec[at+len(key):]) != v.VotingPower {
					t.Fatal("voting power not found")
				}
				binary.LittleEndian.PutUint64(rec[at+len(key):], v.VotingPower*1000)
				nl, err := aptos.DecodeLedgerInfoWithSignatures(rec)
				if err != nil {
					t.Fatal(err)
				}
				newWP = aptos.DiemDomain.Waypoint(&nl.LedgerInfo)
				return rec
			})
			man := glob1(t, filepath.Join(s.root, "epoch_ending_120-.*", "epoch_ending.manifest"))
			rewrite(t, man, func(b []byte) []byte {
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				m["waypoints"] = []string{newWP.String()}
				out, _ := json.Marshal(m)
				return out
			})
			return file, nil
		}},
		{"swapped epoch-ending chunks", func(t *testing.T, s store) (string, []string) {
			a := glob1(t, filepath.Join(s.root, "epoch_ending_5-.*", "5-.chunk"))
			b := glob1(t, filepath.Join(s.root, "epoch_ending_6-.*", "6-.chunk"))
			ab, _ := os.ReadFile(a)
			bb, _ := os.ReadFile(b)
			os.WriteFile(a, bb, 0o644)
			os.WriteFile(b, ab, 0o644)
			rel, _ := filepath.Rel(s.root, a)
			return rel, nil
		}},
		{"wrong waypoint", func(t *testing.T, s store) (string, []string) {
			return filepath.Base(glob1(t, filepath.Join(s.root, "epoch_ending_0-.*"))) + "/0-.chunk",
				[]string{"--trust-waypoint", "0:56d944dedbf7df290e9da5cb5a3fa73dec142d74dfa371ff868ac8af94b9bfb7"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := copyStore(t)
			file, extra := c.tamper(t, s)
			// Through file:// (the adapter's process per file is slow); the adapter's
			// own path is the published store's test.
			rep, r := verifyJSON(t, s, false, 1, extra...)
			failedRow(t, rep, file)
			if rep.EpochEndings != 0 || rep.Transactions != 0 || rep.StateRootProofs != 0 {
				t.Fatalf("a broken chain still verified: %+v", rep)
			}
			if !strings.Contains(r.Stderr, "verification failed") {
				t.Fatalf("stderr: %s", r.Stderr)
			}
		})
	}
}

// TestTamperBackups: a changed state root, one byte of one transaction, a truncated
// range proof each fail their backup's row naming the file; the rest still verifies.
func TestTamperBackups(t *testing.T) {
	s := copyStore(t)
	state := glob1(t, filepath.Join(s.root, "state_epoch_203_*", "state.manifest"))
	rewrite(t, state, func(b []byte) []byte {
		i := bytes.Index(b, []byte(`"root_hash":"`)) + len(`"root_hash":"`)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return b
	})
	chunk := glob1(t, filepath.Join(s.root, "transaction_1-.*", "1-.chunk"))
	rewrite(t, chunk, func(b []byte) []byte {
		recs := frames(t, b)
		recs[4321][10] ^= 0x20 // inside the transaction, before its info
		return join(recs)
	})
	proof := glob1(t, filepath.Join(s.root, "transaction_40001-.*", "40001-60000.proof"))
	rewrite(t, proof, func(b []byte) []byte {
		// Drop the last left sibling: well-formed BCS, one level short.
		n := int(b[0])
		if n == 0 || n >= 0x80 {
			t.Fatalf("left siblings %d", n)
		}
		out := append([]byte{byte(n - 1)}, b[1:1+32*(n-1)]...)
		return append(out, b[1+32*n:]...)
	})
	// A proof cut short in its bytes.
	cut := glob1(t, filepath.Join(s.root, "transaction_20001-.*", "20001-40000.proof"))
	rewrite(t, cut, func(b []byte) []byte { return b[:len(b)-7] })
	rep, _ := verifyJSON(t, s, false, 1)
	rel := func(p string) string { r, _ := filepath.Rel(s.root, p); return r }
	want := map[string]string{"version 129768": rel(state), "versions 1-20000": rel(chunk), "versions 20001-40000": rel(cut), "versions 40001-60000": rel(proof)}
	failed := 0
	for _, row := range rep.Rows {
		if row.Status != aptosverify.StatusFailed {
			continue
		}
		failed++
		file, ok := want[row.Range]
		if !ok || !strings.Contains(row.Error+" "+string(row.Manifest), file) {
			t.Fatalf("failed row %+v, want one naming %q", row, file)
		}
		if row.Range == "versions 1-20000" && !strings.Contains(row.Error, "version 4322: mismatch: transaction hashes to") {
			t.Fatalf("tampered transaction: %+v", row)
		}
		t.Logf("%s: %s", row.Range, row.Error)
	}
	if failed != 4 || rep.EpochEndings != 210 || rep.StateRootProofs != 2 || rep.Transactions != 0 {
		t.Fatalf("failed %d, endings %d, root proofs %d, transactions %d", failed, rep.EpochEndings, rep.StateRootProofs, rep.Transactions)
	}
}
