package native

import (
	"encoding/json"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// EpochEndingChunk holds the signed epoch-ending ledger infos of epochs
// [FirstEpoch, LastEpoch], one record each.
type EpochEndingChunk struct {
	FirstEpoch uint64 `json:"first_epoch"`
	LastEpoch  uint64 `json:"last_epoch"`
	File
}

// EpochEnding is the manifest of an epoch-ending backup.
type EpochEnding struct {
	Format     int    `json:"format"`
	FirstEpoch uint64 `json:"first_epoch"`
	LastEpoch  uint64 `json:"last_epoch"`
	// Waypoints names the ledger info ending each epoch, FirstEpoch first.
	Waypoints []ledger.Waypoint  `json:"waypoints"`
	Chunks    []EpochEndingChunk `json:"chunks"`
}

// Validate checks that the chunks cover [FirstEpoch, LastEpoch] contiguously and that
// there is one waypoint per epoch.
func (m *EpochEnding) Validate() error {
	if m.Format != FormatVersion {
		return invalidf("epoch ending manifest: format %d, want %d", m.Format, FormatVersion)
	}
	if m.FirstEpoch > m.LastEpoch {
		return invalidf("epoch ending manifest: first epoch %d after last %d", m.FirstEpoch, m.LastEpoch)
	}
	if uint64(len(m.Waypoints)) != m.LastEpoch-m.FirstEpoch+1 {
		return invalidf("epoch ending manifest: %d waypoints for epochs [%d, %d]", len(m.Waypoints), m.FirstEpoch, m.LastEpoch)
	}
	if len(m.Chunks) == 0 || len(m.Chunks) > MaxChunks {
		return invalidf("epoch ending manifest: %d chunks", len(m.Chunks))
	}
	next := m.FirstEpoch
	for i := range m.Chunks {
		c := &m.Chunks[i]
		if c.FirstEpoch != next || c.LastEpoch < c.FirstEpoch {
			return invalidf("epoch ending manifest: chunk %d covers [%d, %d], want it to start at %d", i, c.FirstEpoch, c.LastEpoch, next)
		}
		if err := c.validate(fmt.Sprintf("epoch ending chunk %d", i)); err != nil {
			return err
		}
		next = c.LastEpoch + 1
	}
	if next != m.LastEpoch+1 {
		return invalidf("epoch ending manifest: chunks end at epoch %d, want %d", next-1, m.LastEpoch)
	}
	return nil
}

// StateSnapshotChunk holds state items [FirstIndex, LastIndex] in key-hash order, and
// the range proof of its last item.
type StateSnapshotChunk struct {
	FirstIndex   uint64      `json:"first_index"`
	LastIndex    uint64      `json:"last_index"`
	FirstKeyHash ledger.Hash `json:"first_key_hash"`
	LastKeyHash  ledger.Hash `json:"last_key_hash"`
	File
	Proof File `json:"proof"`
}

// StateSnapshot is the manifest of a state snapshot backup.
type StateSnapshot struct {
	Format    int         `json:"format"`
	Version   uint64      `json:"version"`
	Epoch     uint64      `json:"epoch"`
	RootHash  ledger.Hash `json:"root_hash"`
	ItemCount uint64      `json:"item_count"`
	// RootProof ties RootHash to a signed ledger info (TransactionInfo at Version, its
	// accumulator proof, the ledger info).
	RootProof File                 `json:"root_proof"`
	Chunks    []StateSnapshotChunk `json:"chunks"`
}

// Validate checks that the chunks cover [0, ItemCount) contiguously with increasing key
// hashes.
func (m *StateSnapshot) Validate() error {
	if m.Format != FormatVersion {
		return invalidf("state snapshot manifest: format %d, want %d", m.Format, FormatVersion)
	}
	if err := m.RootProof.validate("state snapshot root proof"); err != nil {
		return err
	}
	if len(m.Chunks) > MaxChunks || (m.ItemCount > 0) != (len(m.Chunks) > 0) {
		return invalidf("state snapshot manifest: %d chunks for %d items", len(m.Chunks), m.ItemCount)
	}
	var next uint64
	for i := range m.Chunks {
		c := &m.Chunks[i]
		if c.FirstIndex != next || c.LastIndex < c.FirstIndex {
			return invalidf("state snapshot manifest: chunk %d covers items [%d, %d], want it to start at %d", i, c.FirstIndex, c.LastIndex, next)
		}
		if i > 0 && string(c.FirstKeyHash[:]) <= string(m.Chunks[i-1].LastKeyHash[:]) {
			return invalidf("state snapshot manifest: chunk %d key hashes do not increase", i)
		}
		if c.FirstIndex != c.LastIndex && string(c.FirstKeyHash[:]) >= string(c.LastKeyHash[:]) {
			return invalidf("state snapshot manifest: chunk %d first key hash not before its last", i)
		}
		if err := c.validate(fmt.Sprintf("state snapshot chunk %d", i)); err != nil {
			return err
		}
		if err := c.Proof.validate(fmt.Sprintf("state snapshot chunk %d proof", i)); err != nil {
			return err
		}
		next = c.LastIndex + 1
	}
	if next != m.ItemCount {
		return invalidf("state snapshot manifest: chunks hold %d items, manifest says %d", next, m.ItemCount)
	}
	return nil
}

// TransactionChunk holds transactions [FirstVersion, LastVersion] with their outputs,
// and the accumulator range proof with the ledger info it verifies against.
type TransactionChunk struct {
	FirstVersion uint64 `json:"first_version"`
	LastVersion  uint64 `json:"last_version"`
	File
	Proof File `json:"proof"`
}

// Transaction is the manifest of a transaction backup.
type Transaction struct {
	Format       int                `json:"format"`
	FirstVersion uint64             `json:"first_version"`
	LastVersion  uint64             `json:"last_version"`
	Chunks       []TransactionChunk `json:"chunks"`
}

// Validate checks that the chunks cover [FirstVersion, LastVersion] contiguously.
func (m *Transaction) Validate() error {
	if m.Format != FormatVersion {
		return invalidf("transaction manifest: format %d, want %d", m.Format, FormatVersion)
	}
	if m.FirstVersion > m.LastVersion {
		return invalidf("transaction manifest: first version %d after last %d", m.FirstVersion, m.LastVersion)
	}
	if len(m.Chunks) == 0 || len(m.Chunks) > MaxChunks {
		return invalidf("transaction manifest: %d chunks", len(m.Chunks))
	}
	next := m.FirstVersion
	for i := range m.Chunks {
		c := &m.Chunks[i]
		if c.FirstVersion != next || c.LastVersion < c.FirstVersion {
			return invalidf("transaction manifest: chunk %d covers [%d, %d], want it to start at %d", i, c.FirstVersion, c.LastVersion, next)
		}
		if err := c.validate(fmt.Sprintf("transaction chunk %d", i)); err != nil {
			return err
		}
		if err := c.Proof.validate(fmt.Sprintf("transaction chunk %d proof", i)); err != nil {
			return err
		}
		next = c.LastVersion + 1
	}
	if next != m.LastVersion+1 {
		return invalidf("transaction manifest: chunks end at version %d, want %d", next-1, m.LastVersion)
	}
	return nil
}

// Manifest is any of the three manifest types.
type Manifest interface {
	Validate() error
}

// Encode returns the indented JSON of a manifest after validating it.
func Encode(m Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, "", " ")
}

// DecodeEpochEnding decodes and validates an epoch-ending manifest.
func DecodeEpochEnding(b []byte) (*EpochEnding, error) {
	var m EpochEnding
	if err := decodeStrict(b, MaxManifestSize, "epoch ending manifest", &m); err != nil {
		return nil, err
	}
	return &m, m.Validate()
}

// DecodeStateSnapshot decodes and validates a state snapshot manifest.
func DecodeStateSnapshot(b []byte) (*StateSnapshot, error) {
	var m StateSnapshot
	if err := decodeStrict(b, MaxManifestSize, "state snapshot manifest", &m); err != nil {
		return nil, err
	}
	return &m, m.Validate()
}

// DecodeTransaction decodes and validates a transaction manifest.
func DecodeTransaction(b []byte) (*Transaction, error) {
	var m Transaction
	if err := decodeStrict(b, MaxManifestSize, "transaction manifest", &m); err != nil {
		return nil, err
	}
	return &m, m.Validate()
}
