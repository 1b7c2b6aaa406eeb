package backupcli

import (
	"errors"
	"fmt"
	"io"
)

// MismatchError reports a file that decodes but disagrees with its manifest: a
// record count against the manifest's range, a ledger info of the wrong epoch or
// version, state keys out of order or not the manifest's first and last key.
type MismatchError struct {
	Msg string
}

func (e *MismatchError) Error() string { return e.Msg }

func mismatchf(format string, args ...any) error {
	return &MismatchError{Msg: fmt.Sprintf(format, args...)}
}

// IsMismatch reports whether err is a *MismatchError or a *ManifestError.
func IsMismatch(err error) bool {
	var me *MismatchError
	var mf *ManifestError
	return errors.As(err, &me) || errors.As(err, &mf)
}

// ChunkResult is what checking a chunk read.
type ChunkResult struct {
	// Records is how many records were read; Bytes how many bytes they took
	// (after the gzip layer).
	Records int
	Bytes   int64
}

// CheckEpochEndingChunk reads an epoch-ending chunk (after its gzip layer) and checks
// it against its manifest entry: one ledger info per epoch of [c.FirstEpoch,
// c.LastEpoch], each of its epoch, and at the version of that epoch's waypoint
// (waypoints are the manifest's, starting at epoch firstEpoch).
func CheckEpochEndingChunk(r io.Reader, c EpochEndingChunk, firstEpoch uint64, waypoints []Waypoint, lim RecordLimits) (ChunkResult, error) {
	want := c.LastEpoch - c.FirstEpoch + 1
	it := NewRecords(r, lim)
	var mismatch error
	for it.Next() {
		i := uint64(it.Count() - 1)
		if i >= want || mismatch != nil {
			continue // keep reading: a partial file is reported before a mismatch
		}
		epoch := c.FirstEpoch + i
		h, err := DecodeLedgerInfoHeader(it.Record())
		if err != nil {
			mismatch = mismatchf("record %d: %v", i, err)
			continue
		}
		if h.Epoch != epoch {
			mismatch = mismatchf("record %d is a ledger info of epoch %d, want %d", i, h.Epoch, epoch)
			continue
		}
		if k := epoch - firstEpoch; k < uint64(len(waypoints)) {
			ok := false
			for _, v := range h.Versions {
				ok = ok || v == waypoints[k].Version
			}
			if !ok {
				mismatch = mismatchf("record %d (epoch %d) is not at version %d of its waypoint (read %v)", i, epoch, waypoints[k].Version, h.Versions)
			}
		}
	}
	res := ChunkResult{Records: it.Count(), Bytes: it.Offset()}
	if err := it.Err(); err != nil {
		return res, err
	}
	if uint64(it.Count()) != want {
		return res, mismatchf("%d records, manifest epochs [%d, %d] want %d", it.Count(), c.FirstEpoch, c.LastEpoch, want)
	}
	return res, mismatch
}

// CheckTransactionChunk reads a transaction chunk and checks that it holds one record
// per version of [c.FirstVersion, c.LastVersion].
func CheckTransactionChunk(r io.Reader, c TransactionChunk, lim RecordLimits) (ChunkResult, error) {
	want := c.LastVersion - c.FirstVersion + 1
	it := NewRecords(r, lim)
	for it.Next() {
	}
	res := ChunkResult{Records: it.Count(), Bytes: it.Offset()}
	if err := it.Err(); err != nil {
		return res, err
	}
	if uint64(it.Count()) != want {
		return res, mismatchf("%d records, manifest versions [%d, %d] want %d", it.Count(), c.FirstVersion, c.LastVersion, want)
	}
	return res, nil
}

// CheckStateChunk reads a state snapshot chunk and checks it against its manifest
// entry: one record per index of [c.FirstIdx, c.LastIdx], hashed keys strictly
// ascending, the first and last equal to c.FirstKey and c.LastKey.
func CheckStateChunk(r io.Reader, c StateSnapshotChunk, lim RecordLimits) (ChunkResult, error) {
	want := c.LastIdx - c.FirstIdx + 1
	it := NewRecords(r, lim)
	var mismatch error
	var prev, first Hash
	salt := stateKeySalts[0]
	for it.Next() {
		if mismatch != nil {
			continue
		}
		i := it.Count() - 1
		if i == 0 {
			salt = saltOf(it.Record(), c.FirstKey)
		}
		k, err := stateRecordKey(it.Record(), salt)
		if err != nil {
			mismatch = mismatchf("record %d: %v", i, err)
			continue
		}
		if i == 0 {
			first = k
		} else if compareHash(prev, k) >= 0 {
			mismatch = mismatchf("record %d: key %s not above the previous key %s", i, k, prev)
		}
		prev = k
	}
	res := ChunkResult{Records: it.Count(), Bytes: it.Offset()}
	if err := it.Err(); err != nil {
		return res, err
	}
	if uint64(it.Count()) != want {
		return res, mismatchf("%d records, manifest indexes [%d, %d] want %d", it.Count(), c.FirstIdx, c.LastIdx, want)
	}
	if mismatch != nil {
		return res, mismatch
	}
	if first != c.FirstKey {
		return res, mismatchf("first key %s, manifest says %s", first, c.FirstKey)
	}
	if prev != c.LastKey {
		return res, mismatchf("last key %s, manifest says %s", prev, c.LastKey)
	}
	return res, nil
}

// saltOf returns the StateKey hasher seed under which the chunk's first record
// hashes to the manifest's first key (the chain's hash prefix), or the default seed
// when none does (the first-key check then reports the mismatch).
func saltOf(rec []byte, firstKey Hash) []byte {
	for _, salt := range stateKeySalts {
		if k, err := stateRecordKey(rec, salt); err == nil && k == firstKey {
			return salt
		}
	}
	return stateKeySalts[0]
}

// CheckProof reads a proof file (one BCS value, not decoded here) completely; an
// empty proof cannot be BCS of anything and is partial.
func CheckProof(r io.Reader, max int64) (ChunkResult, error) {
	n, err := io.Copy(io.Discard, io.LimitReader(r, max+1))
	res := ChunkResult{Bytes: n}
	if err != nil {
		return res, err
	}
	if n > max {
		return res, fmt.Errorf("%w: proof larger than %d bytes", ErrTooLarge, max)
	}
	if n == 0 {
		return res, fmt.Errorf("%w: empty proof file", ErrPartial)
	}
	return res, nil
}
