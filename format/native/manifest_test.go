package native

import (
	"errors"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

func file(h string) File { return File{Handle: stringHandle(h), Size: 10, RawSize: 20} }

func sampleState() *StateSnapshot {
	return &StateSnapshot{
		Format: FormatVersion, Version: 100, Epoch: 2, ItemCount: 10,
		RootHash:  ledger.HashOf(ledger.DomainSMTLeaf, []byte("r")),
		RootProof: file("b-1/root_proof"),
		Chunks: []StateSnapshotChunk{
			{FirstIndex: 0, LastIndex: 4, FirstKeyHash: ledger.Hash{1}, LastKeyHash: ledger.Hash{2}, File: file("b-1/0.chunk"), Proof: file("b-1/0.proof")},
			{FirstIndex: 5, LastIndex: 9, FirstKeyHash: ledger.Hash{3}, LastKeyHash: ledger.Hash{4}, File: file("b-1/1.chunk"), Proof: file("b-1/1.proof")},
		},
	}
}

func sampleTxn() *Transaction {
	return &Transaction{Format: FormatVersion, FirstVersion: 10, LastVersion: 29, Chunks: []TransactionChunk{
		{FirstVersion: 10, LastVersion: 19, File: file("t/0"), Proof: file("t/0.proof")},
		{FirstVersion: 20, LastVersion: 29, File: file("t/1"), Proof: file("t/1.proof")},
	}}
}

func sampleEpoch() *EpochEnding {
	return &EpochEnding{Format: FormatVersion, FirstEpoch: 1, LastEpoch: 3,
		Waypoints: []ledger.Waypoint{{Version: 1}, {Version: 2}, {Version: 3}},
		Chunks: []EpochEndingChunk{
			{FirstEpoch: 1, LastEpoch: 2, File: file("e/0")},
			{FirstEpoch: 3, LastEpoch: 3, File: file("e/1")},
		}}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range []Manifest{sampleState(), sampleTxn(), sampleEpoch()} {
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		var got Manifest
		switch m.(type) {
		case *StateSnapshot:
			got, err = DecodeStateSnapshot(b)
		case *Transaction:
			got, err = DecodeTransaction(b)
		case *EpochEnding:
			got, err = DecodeEpochEnding(b)
		}
		if err != nil {
			t.Fatalf("%T: %v\n%s", m, err, b)
		}
		b2, _ := Encode(got)
		if string(b) != string(b2) {
			t.Fatalf("%T: round trip differs", m)
		}
	}
}

func TestRejects(t *testing.T) {
	cases := map[string]func() error{
		"traversal handle": func() error {
			m := sampleState()
			m.Chunks[1].Handle = "../x"
			return m.Validate()
		},
		"absolute proof handle": func() error {
			m := sampleState()
			m.Chunks[0].Proof.Handle = "/etc/passwd"
			return m.Validate()
		},
		"gap between state chunks": func() error {
			m := sampleState()
			m.Chunks[1].FirstIndex = 6
			return m.Validate()
		},
		"item count mismatch": func() error {
			m := sampleState()
			m.ItemCount = 11
			return m.Validate()
		},
		"key hashes not increasing": func() error {
			m := sampleState()
			m.Chunks[1].FirstKeyHash = ledger.Hash{2}
			return m.Validate()
		},
		"overlapping txn chunks": func() error {
			m := sampleTxn()
			m.Chunks[1].FirstVersion = 19
			return m.Validate()
		},
		"txn chunks short of last": func() error {
			m := sampleTxn()
			m.LastVersion = 30
			return m.Validate()
		},
		"missing waypoint": func() error {
			m := sampleEpoch()
			m.Waypoints = m.Waypoints[:2]
			return m.Validate()
		},
		"unknown format": func() error {
			m := sampleTxn()
			m.Format = 2
			return m.Validate()
		},
		"negative size": func() error {
			m := sampleTxn()
			m.Chunks[0].Size = -1
			return m.Validate()
		},
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	b, _ := Encode(sampleTxn())
	withUnknown := strings.Replace(string(b), `"format"`, `"evil": 1, "format"`, 1)
	if _, err := DecodeTransaction([]byte(withUnknown)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown field accepted: %v", err)
	}
	if _, err := DecodeTransaction(append(b, []byte(" {}")...)); !errors.Is(err, ErrInvalid) {
		t.Errorf("trailing data accepted: %v", err)
	}
	if _, err := DecodeTransaction([]byte("{")); !errors.Is(err, ErrInvalid) {
		t.Errorf("broken JSON accepted: %v", err)
	}
}

func TestMetadata(t *testing.T) {
	lines := []Metadata{
		{Format: 1, Type: TypeEpochEnding, FirstEpoch: 0, LastEpoch: 4, FirstVersion: 0, LastVersion: 400, Manifest: "e-1/manifest.json"},
		{Format: 1, Type: TypeStateSnapshot, Version: 400, Epoch: 4, Manifest: "s-1/manifest.json"},
		{Format: 1, Type: TypeTransaction, FirstVersion: 0, LastVersion: 499, Manifest: "t-1/manifest.json"},
	}
	var file []byte
	for i := range lines {
		b, err := lines[i].EncodeLine()
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, b...)
	}
	got, err := DecodeMetadataFile("m", file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] != lines[1] {
		t.Fatalf("decoded %+v", got)
	}
	for name, bad := range map[string]string{
		"unknown type":  `{"format":1,"type":"mystery","manifest":"a/b"}`,
		"broken json":   `{"format":1,"type":`,
		"traversal":     `{"format":1,"type":"transaction","manifest":"../../etc/passwd"}`,
		"empty":         "\n\n",
		"reversed":      `{"format":1,"type":"transaction","first_version":5,"last_version":4,"manifest":"a/b"}`,
		"unknown field": `{"format":1,"type":"transaction","manifest":"a/b","x":1}`,
	} {
		if _, err := DecodeMetadataFile(name, []byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

func FuzzDecodeManifests(f *testing.F) {
	for _, m := range []Manifest{sampleState(), sampleTxn(), sampleEpoch()} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Add([]byte(`{"format":1,"chunks":[{"handle":"../x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeStateSnapshot(b); err == nil {
			if m.Validate() != nil {
				t.Fatal("accepted an invalid state snapshot manifest")
			}
		}
		if m, err := DecodeTransaction(b); err == nil {
			if m.Validate() != nil {
				t.Fatal("accepted an invalid transaction manifest")
			}
		}
		if m, err := DecodeEpochEnding(b); err == nil {
			if m.Validate() != nil {
				t.Fatal("accepted an invalid epoch ending manifest")
			}
		}
	})
}

func FuzzDecodeMetadataFile(f *testing.F) {
	f.Add([]byte(`{"format":1,"type":"transaction","first_version":0,"last_version":9,"manifest":"t/manifest.json"}` + "\n"))
	f.Add([]byte(`{"format":1,"type":"state_snapshot","version":9,"epoch":1,"manifest":"s/m"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := DecodeMetadataFile("fuzz", b)
		if err != nil {
			return
		}
		for i := range ms {
			if ms[i].Validate() != nil {
				t.Fatal("accepted an invalid metadata line")
			}
		}
	})
}
