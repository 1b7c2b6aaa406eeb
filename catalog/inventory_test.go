package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage/local"
)

func TestInventoryRangesGapsDuplicates(t *testing.T) {
	ctx := context.Background()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	save := func(name string, ms ...native.Metadata) {
		var b []byte
		for _, m := range ms {
			m.Format = native.FormatVersion
			m.Manifest = "f/manifest.json"
			line, err := m.EncodeLine()
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, line...)
		}
		if _, err := st.SaveMetadata(ctx, name, b); err != nil {
			t.Fatal(err)
		}
	}
	save("a.meta", native.Metadata{Type: native.TypeTransaction, FirstVersion: 0, LastVersion: 99, Size: 2048})
	save("b.meta", native.Metadata{Type: native.TypeTransaction, FirstVersion: 200, LastVersion: 299},
		native.Metadata{Type: native.TypeTransaction, FirstVersion: 0, LastVersion: 99})
	save("c.meta", native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 2, LastEpoch: 4, FirstVersion: 10, LastVersion: 30})
	save("d.meta", native.Metadata{Type: native.TypeStateSnapshot, Version: 150, Epoch: 3})
	inv, err := catalog.Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Backups) != 4 || inv.Duplicates != 1 {
		t.Fatalf("backups %+v duplicates %d", inv.Backups, inv.Duplicates)
	}
	want := []catalog.Gap{{Type: native.TypeEpochEnding, First: 0, Last: 1}, {Type: native.TypeTransaction, First: 100, Last: 199}}
	if len(inv.Gaps) != 2 || inv.Gaps[0] != want[0] || inv.Gaps[1] != want[1] {
		t.Fatalf("gaps %+v", inv.Gaps)
	}
	var tb bytes.Buffer
	if err := inv.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"versions 0-99", "2.0 KiB", "GAP versions 100-199", "GAP epochs 0-1", "version 150 (epoch 3)", "1 duplicate"} {
		if !strings.Contains(tb.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tb.String())
		}
	}
	// Issue 15 item 8: the duplicates note is a footer after the table, not a row
	// that widens the TYPE column.
	lines := strings.Split(strings.TrimRight(tb.String(), "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "note: 1 duplicate metadata lines ignored") {
		t.Errorf("last line %q, want the duplicates note", last)
	}
	// Issue 15 item 8: the size column says what it counts (verify's says CHUNK BYTES).
	if !strings.Contains(lines[0], " STORED ") {
		t.Errorf("header %q: want the STORED column (the stored size of all the backup's files)", lines[0])
	}
	if !strings.HasPrefix(lines[0], "TYPE            RANGE") {
		t.Errorf("header %q: the TYPE column is wider than its longest type", lines[0])
	}
	var jb bytes.Buffer
	if err := inv.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	var back catalog.Inventory
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil || len(back.Backups) != 4 {
		t.Fatalf("json: %v %s", err, jb.String())
	}
	// A malformed metadata file is an error naming it.
	if _, err := st.SaveMetadata(ctx, "bad.meta", []byte("{nope\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Load(ctx, st); err == nil || !strings.Contains(err.Error(), "bad.meta") {
		t.Fatalf("malformed metadata: %v", err)
	}
}

func TestLoadCached(t *testing.T) {
	ctx := context.Background()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := native.Metadata{Format: native.FormatVersion, Type: native.TypeTransaction, FirstVersion: 0, LastVersion: 9, Manifest: "f/manifest.json"}
	b, err := m.EncodeLine()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "a.meta", b); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for range 2 {
		inv, err := catalog.LoadCached(ctx, st, dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.Backups) != 1 || inv.Backups[0].MetadataFile != "metadata/a.meta" {
			t.Fatalf("backups %+v", inv.Backups)
		}
		if v, ok := inv.LatestRestorableVersion(); !ok || v != 9 {
			t.Fatalf("latest %d %v", v, ok)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 {
		t.Fatalf("cache dir: %v %v", ents, err)
	}
}
