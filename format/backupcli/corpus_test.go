package backupcli_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stores returns the root of every real store: aptos-libra7's snapshots/ and the
// five diem-0l-v5 stores.
func stores(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	a, _, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	out["aptos-libra7"] = a
	for _, s := range corpora.DiemStores {
		d, err := corpora.Diem(s)
		if err != nil {
			t.Fatal(err)
		}
		out["diem-0l-v5/"+s] = d
	}
	return out
}

// plain reads a corpus file without its gzip layer.
func plain(t testing.TB, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := backupcli.Decompress(f, 0)
	if err != nil {
		t.Fatal(p, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(p, err)
	}
	return b
}

// TestEveryRealFile decodes every metadata file, every manifest and every chunk and
// proof of both corpora, and checks each against what references it.
func TestEveryRealFile(t *testing.T) {
	counts := map[string]int{}
	for name, root := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st, err := local.New(root)
			if err != nil {
				t.Fatal(err)
			}
			files, err := backupcli.LoadMetadata(context.Background(), st, backupcli.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if f, err := backupcli.DetectStore(context.Background(), st); err != nil || f != backupcli.FormatBackupCLI {
				t.Fatalf("DetectStore: %q %v", f, err)
			}
			for _, f := range files {
				if f.Err != nil {
					t.Fatalf("%s: %v", f.Handle, f.Err)
				}
				if f.Gzipped != (name == "aptos-libra7") {
					t.Fatalf("%s: gzipped %v", f.Handle, f.Gzipped)
				}
				if f.Size == 0 {
					if len(f.Lines) != 0 {
						t.Fatal("lines from nothing")
					}
					counts["empty metadata"]++
					continue
				}
				// Every line round-trips to the bytes backup-cli wrote.
				data := plain(t, filepath.Join(root, string(f.Handle)))
				var re bytes.Buffer
				for _, m := range f.Lines {
					b, err := json.Marshal(m)
					if err != nil {
						t.Fatal(err)
					}
					re.Write(b)
					re.WriteByte('\n')
				}
				if !bytes.Equal(re.Bytes(), data) {
					t.Fatalf("%s: re-encoded\n%s\nread\n%s", f.Handle, re.Bytes(), data)
				}
				if backupcli.Detect(data) != backupcli.FormatBackupCLI {
					t.Fatalf("%s: not detected", f.Handle)
				}
				counts["metadata"]++
			}
			v := backupcli.NewView(files)
			for _, b := range v.Backups {
				mp := filepath.Join(root, string(b.Manifest))
				if _, err := os.Stat(mp); errors.Is(err, os.ErrNotExist) {
					if name != "diem-0l-v5/77" || b.Manifest != "epoch_ending_77-.1d01/epoch_ending.manifest" {
						t.Fatalf("manifest %s absent", b.Manifest)
					}
					continue
				}
				m, err := backupcli.DecodeManifest(b.Type, plain(t, mp))
				if err != nil {
					t.Fatalf("%s: %v", b.Manifest, err)
				}
				if err := m.Verify(); err != nil {
					t.Fatalf("%s: %v", b.Manifest, err)
				}
				if err := m.CheckAgainst(&b); err != nil {
					t.Fatalf("%s: %v", b.Manifest, err)
				}
				counts["manifest "+b.Type]++
				checkChunks(t, root, m, counts)
			}
		})
	}
	want := map[string]int{
		"metadata": 218 + 2 + 2 + 2 + 3 + 2, "empty metadata": 2,
		"manifest epoch_ending": 210 + 4, "manifest transaction": 4 + 3, "manifest state_snapshot": 3 + 3,
		"epoch chunk": 210 + 4, "transaction chunk": 3 + 3, "state chunk": 3, "proof": 4 + 6 + 3 + 6,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d files, want %d", k, counts[k], n)
		}
	}
}

func checkChunks(t *testing.T, root string, m *backupcli.Manifest, counts map[string]int) {
	t.Helper()
	open := func(h storage.FileHandle) io.Reader {
		p := filepath.Join(root, string(h))
		if _, err := os.Stat(p); err != nil {
			return nil // the four chunks aptos-libra7 never published
		}
		return bytes.NewReader(plain(t, p))
	}
	lim := backupcli.RecordLimits{}
	switch {
	case m.EpochEnding != nil:
		for _, c := range m.EpochEnding.Chunks {
			r := open(c.LedgerInfos)
			if _, err := backupcli.CheckEpochEndingChunk(r, c, m.EpochEnding.FirstEpoch, m.EpochEnding.Waypoints, lim); err != nil {
				t.Fatalf("%s: %v", c.LedgerInfos, err)
			}
			counts["epoch chunk"]++
		}
	case m.Transaction != nil:
		for _, c := range m.Transaction.Chunks {
			if r := open(c.Transactions); r != nil {
				if res, err := backupcli.CheckTransactionChunk(r, c, lim); err != nil || uint64(res.Records) != c.LastVersion-c.FirstVersion+1 {
					t.Fatalf("%s: %v", c.Transactions, err)
				}
				counts["transaction chunk"]++
			}
			if _, err := backupcli.CheckProof(open(c.Proof), 1<<20); err != nil {
				t.Fatalf("%s: %v", c.Proof, err)
			}
			counts["proof"]++
		}
	case m.StateSnapshot != nil:
		for _, c := range m.StateSnapshot.Chunks {
			if r := open(c.Blobs); r != nil {
				if _, err := backupcli.CheckStateChunk(r, c, lim); err != nil {
					t.Fatalf("%s: %v", c.Blobs, err)
				}
				counts["state chunk"]++
			}
			if _, err := backupcli.CheckProof(open(c.Proof), 1<<20); err != nil {
				t.Fatalf("%s: %v", c.Proof, err)
			}
			counts["proof"]++
		}
		if _, err := backupcli.CheckProof(open(m.StateSnapshot.Proof), 1<<20); err != nil {
			t.Fatal(err)
		}
		counts["proof"]++
	}
}

func TestDecodeMetadataErrorsNameFileAndLine(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{`{"EpochEndingBackup":{"first_epoch":1,"last_epoch":1,"first_version":5,"last_version":5,"manifest":"a/b","x":1}}`, `metadata file metadata/x.meta line 1: EpochEndingBackup: invalid backup-cli data: json: unknown field "x"`},
		{"{\"Identity\":{\"id\":\"" + strings.Repeat("ab", 32) + "\"}}\n{\"Bogus\":{}}\n", `metadata file metadata/x.meta line 2: invalid backup-cli data: unknown metadata variant "Bogus"`},
		{`{"TransactionBackup":{"first_version":1,"manifest":"a/b"}}`, `line 1: TransactionBackup: invalid backup-cli data: missing key "last_version"`},
		{`{"TransactionBackup":{"first_version":2,"last_version":1,"manifest":"a/b"}}`, `versions [2, 1]`},
		{`{"StateSnapshotBackup":{"version":1,"manifest":"../etc/passwd"}}`, `".." segment`},
		{"{\"Identity\":{\"id\":\"" + strings.Repeat("ab", 32) + "\"}}\n\n", `line 2: invalid backup-cli data: blank line`},
		{`{"StateSnapshotBackup":{"version":-1,"manifest":"a/b"}}`, `cannot unmarshal number -1`},
		{`{"A":1,"B":2}`, `want one variant key, got 2 keys`},
		{`[1]`, `not a JSON object`},
		{`{"Identity":{"id":"zz"}}`, `want 64 hex digits`},
		{`{"CompactionTimestamps":{"file_compacted_at":5,"compaction_timestamps":{"/abs":1}}}`, `absolute path`},
	} {
		_, err := backupcli.DecodeMetadataFile("metadata/x.meta", []byte(c.data))
		var me *backupcli.MetadataError
		if err == nil || !errors.As(err, &me) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.data, err, c.want)
		}
	}
}

// The variants of current backup-cli (metadata/mod.rs): state snapshots with and
// without epoch, identity, compaction timestamps, compacted multi-line files.
func TestDecodeMetadataVariants(t *testing.T) {
	data := `{"EpochEndingBackup":{"first_epoch":0,"last_epoch":9,"first_version":0,"last_version":900,"manifest":"e/m"}}
{"EpochEndingBackup":{"first_epoch":10,"last_epoch":19,"first_version":1000,"last_version":1900,"manifest":"f/m"}}
{"StateSnapshotBackup":{"epoch":3,"version":300,"manifest":"s/m"}}
{"StateSnapshotBackup":{"version":400,"manifest":"t/m"}}
{"TransactionBackup":{"first_version":0,"last_version":99,"manifest":"x/m"}}
{"Identity":{"id":"a64fbad378f902ca6e59ea1a91fc78185f5cc1c1a863bb9b2681a848086fd423"}}
{"CompactionTimestamps":{"file_compacted_at":1700000000,"compaction_timestamps":{"metadata/a.meta":1700000000,"metadata/b.meta":null}}}`
	ms, err := backupcli.DecodeMetadataFile("metadata/c.meta", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 7 || *ms[2].StateSnapshot.Epoch != 3 || ms[3].StateSnapshot.Epoch != nil || ms[6].CompactionTimestamps.CompactionTimestamps["metadata/b.meta"] != nil ||
		*ms[6].CompactionTimestamps.CompactionTimestamps["metadata/a.meta"] != 1700000000 {
		t.Fatalf("%+v", ms)
	}
	v := backupcli.NewView([]backupcli.MetadataFile{{Handle: "metadata/c.meta", Lines: ms}})
	if len(v.Backups) != 5 || len(v.Identities) != 1 || v.Compactions != 1 || len(v.Gaps) != 0 {
		t.Fatalf("%+v", v)
	}
}

func TestWaypointAndHashJSON(t *testing.T) {
	var w backupcli.Waypoint
	if err := w.UnmarshalText([]byte("41315058:71581c9bce01487c2c6d3a81383109f714860675bd835b66eebc02bca513e8e4")); err != nil || w.Version != 41315058 {
		t.Fatal(w, err)
	}
	for _, bad := range []string{"", "1", "x:00", "1:abc", "1:" + strings.Repeat("g", 64), "-1:" + strings.Repeat("0", 64)} {
		if err := w.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("waypoint %q accepted", bad)
		}
	}
}

// Test vectors from aptos-core types/src/state_store/state_key/tests.rs.
func TestAptosStateKeyHash(t *testing.T) {
	// StateKey::raw(&[1, 2, 3]): BCS variant 2, Vec<u8> [1,2,3]; then a value byte.
	k, err := backupcli.StateRecordKey([]byte{2, 3, 1, 2, 3, 0})
	if err != nil || hex.EncodeToString(k[:]) != "655ab5766bc87318e18d9287f32d318e15535d3db9d21a6e5a2b41a51b535aff" {
		t.Fatalf("raw: %x %v", k, err)
	}
	// StateKey::table_item(0x1002, &[7, 2, 3]).
	rec := []byte{1}
	handle := make([]byte, 32)
	handle[30], handle[31] = 0x10, 0x02
	rec = append(rec, handle...)
	rec = append(rec, 3, 7, 2, 3, 0)
	k, err = backupcli.StateRecordKey(rec)
	if err != nil || hex.EncodeToString(k[:]) != "6f5550015f7a6036f88b2458f98a7e4800aba09e83f8f294dbf70bff77f224e6" {
		t.Fatalf("table item: %x %v", k, err)
	}
	// A key with no value after it, a short key, an unknown variant.
	for _, bad := range [][]byte{{2, 3, 1, 2, 3}, {1, 0}, {9, 0}, {}} {
		if _, err := backupcli.StateRecordKey(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestLoadReadsManifests(t *testing.T) {
	for name, root := range stores(t) {
		st, err := local.New(root)
		if err != nil {
			t.Fatal(err)
		}
		v, err := backupcli.Load(context.Background(), st, backupcli.LoadOptions{Concurrency: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Manifests) != len(v.All) {
			t.Fatalf("%s: %d manifests for %d lines (no store has duplicates)", name, len(v.Manifests), len(v.All))
		}
		for _, m := range v.Manifests {
			missing := name == "diem-0l-v5/77" && m.Handle == "epoch_ending_77-.1d01/epoch_ending.manifest"
			if missing != errors.Is(m.Err, storage.ErrNotFound) || (!missing && (m.Err != nil || m.Manifest == nil || m.Size == 0)) {
				t.Fatalf("%s: %s: %v", name, m.Handle, m.Err)
			}
		}
	}
}

func TestDetect(t *testing.T) {
	for line, want := range map[string]backupcli.Format{
		// ledgervault's own metadata line (backup/manifest.Metadata.EncodeLine).
		`{"format":1,"type":"epoch_ending","first_epoch":1,"last_epoch":4,"first_version":10,"last_version":40,"manifest":"epoch_ending-1-4-ab/manifest.json","size":123}` + "\n": backupcli.FormatLedgerVault,
		`{"format":1,"type":"state_snapshot","version":7,"epoch":1,"manifest":"s/m"}`:                                                                                             backupcli.FormatLedgerVault,
		`{"Identity":{"id":"a64fbad378f902ca6e59ea1a91fc78185f5cc1c1a863bb9b2681a848086fd423"}}`:                                                                                  backupcli.FormatBackupCLI,
		`{"TransactionBackup":{"first_version":0,"last_version":0,"manifest":"t/m"}}` + "\n{}":                                                                                    backupcli.FormatBackupCLI,
		`{"Other":{}}`: backupcli.FormatUnknown,
		`not json`:     backupcli.FormatUnknown,
		``:             backupcli.FormatUnknown,
	} {
		if got := backupcli.Detect([]byte(line)); got != want {
			t.Errorf("Detect(%q) = %q, want %q", line, got, want)
		}
	}
}
