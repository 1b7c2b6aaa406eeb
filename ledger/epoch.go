package ledger

import (
	"errors"
	"fmt"
)

// ErrBeyondHistory is returned (wrapped) when a ledger info's epoch is later than the
// verified epoch history reaches.
var ErrBeyondHistory = errors.New("beyond verified epoch history")

// EpochHistory is a verified chain of epoch-ending ledger infos that starts at a trusted
// waypoint. It knows the validator set of every epoch after the waypoint's, up to the
// epoch after the last accepted ending, and verifies ledger infos of those epochs.
// It is not safe for concurrent mutation; Verify may run concurrently with itself.
type EpochHistory struct {
	first   uint64       // epoch of the waypoint's ledger info
	endings []LedgerInfo // endings[i] ends epoch first+i; endings[0] is the waypoint's
}

// NewEpochHistory starts a history at the epoch-ending ledger info that wp names (for a
// new chain, the genesis ledger info: epoch 0, version 0, with the first validator set).
// Its signatures are not checked: the waypoint is the root of trust.
func NewEpochHistory(wp Waypoint, trusted *LedgerInfo) (*EpochHistory, error) {
	if err := wp.Verify(trusted); err != nil {
		return nil, fmt.Errorf("start epoch history: %w", err)
	}
	if !trusted.EndsEpoch() {
		return nil, fmt.Errorf("start epoch history: ledger info of waypoint %s does not end epoch %d", wp, trusted.Epoch)
	}
	if err := trusted.Validate(); err != nil {
		return nil, fmt.Errorf("start epoch history: %w", err)
	}
	return &EpochHistory{first: trusted.Epoch, endings: []LedgerInfo{*trusted}}, nil
}

// FirstEpoch returns the epoch of the trusted ledger info the history starts at.
func (h *EpochHistory) FirstEpoch() uint64 { return h.first }

// LatestEpoch returns the latest epoch whose validator set is known: ledger infos of
// epochs FirstEpoch()+1 to LatestEpoch() can be verified.
func (h *EpochHistory) LatestEpoch() uint64 { return h.first + uint64(len(h.endings)) }

// LatestEnding returns the last accepted epoch-ending ledger info.
func (h *EpochHistory) LatestEnding() LedgerInfo { return h.endings[len(h.endings)-1] }

// Ending returns the accepted ledger info that ends epoch, if any.
func (h *EpochHistory) Ending(epoch uint64) (LedgerInfo, bool) {
	if epoch < h.first || epoch-h.first >= uint64(len(h.endings)) {
		return LedgerInfo{}, false
	}
	return h.endings[epoch-h.first], true
}

// ValidatorSet returns the validator set of epoch, if the history knows it.
func (h *EpochHistory) ValidatorSet(epoch uint64) (*ValidatorSet, bool) {
	if epoch <= h.first || epoch > h.LatestEpoch() {
		return nil, false
	}
	return h.endings[epoch-h.first-1].NextValidatorSet, true
}

// Append verifies li as the ledger info that ends LatestEpoch() and adds it: it must be
// of that epoch, signed by a quorum of that epoch's validators, end the epoch (carry the
// next validator set) and not go back in version. Appending an ending already known
// (including the waypoint's own) is accepted if it is identical, so overlapping backups
// can be replayed.
func (h *EpochHistory) Append(l *LedgerInfoWithSignatures) error {
	li := &l.LedgerInfo
	if known, ok := h.Ending(li.Epoch); ok {
		if known.Hash() != li.Hash() {
			return fmt.Errorf("epoch-ending ledger info of epoch %d (version %d) differs from the verified one (version %d)",
				li.Epoch, li.Version, known.Version)
		}
		return nil
	}
	latest := h.LatestEpoch()
	if li.Epoch != latest {
		if li.Epoch > latest {
			return fmt.Errorf("epoch-ending ledger info of epoch %d skips epochs: next expected is %d: %w", li.Epoch, latest, ErrBeyondHistory)
		}
		return fmt.Errorf("epoch-ending ledger info of epoch %d precedes the verified history (starts at %d)", li.Epoch, h.first+1)
	}
	if !li.EndsEpoch() {
		return fmt.Errorf("ledger info of epoch %d version %d does not end its epoch (no next validator set)", li.Epoch, li.Version)
	}
	prev := h.LatestEnding()
	if li.Version < prev.Version {
		return fmt.Errorf("epoch-ending ledger info of epoch %d has version %d before the previous epoch's end %d",
			li.Epoch, li.Version, prev.Version)
	}
	if err := l.VerifySignatures(prev.NextValidatorSet); err != nil {
		return fmt.Errorf("append epoch ending: %w", err)
	}
	h.endings = append(h.endings, *li)
	return nil
}

// Verify checks a ledger info of a known epoch: signed by a quorum of its epoch's
// validators, its version not before the previous epoch's end and, if its epoch's end is
// known, not after it, and identical to that end if it claims to end the epoch. The
// waypoint's own ledger info is accepted as is.
func (h *EpochHistory) Verify(l *LedgerInfoWithSignatures) error {
	li := &l.LedgerInfo
	if li.Epoch == h.first {
		if li.Hash() == h.endings[0].Hash() {
			return nil
		}
		return fmt.Errorf("ledger info of epoch %d version %d precedes the verified epoch history (starts after epoch %d)",
			li.Epoch, li.Version, h.first)
	}
	if li.Epoch < h.first {
		return fmt.Errorf("ledger info of epoch %d version %d precedes the verified epoch history (starts after epoch %d)",
			li.Epoch, li.Version, h.first)
	}
	if li.Epoch > h.LatestEpoch() {
		return fmt.Errorf("ledger info of epoch %d is %w (known up to %d)", li.Epoch, ErrBeyondHistory, h.LatestEpoch())
	}
	vs, _ := h.ValidatorSet(li.Epoch)
	prevEnd := h.endings[li.Epoch-h.first-1]
	if li.Version < prevEnd.Version {
		return fmt.Errorf("ledger info of epoch %d has version %d, before the previous epoch's end %d", li.Epoch, li.Version, prevEnd.Version)
	}
	if end, ok := h.Ending(li.Epoch); ok {
		if li.Version > end.Version {
			return fmt.Errorf("ledger info of epoch %d has version %d, after the epoch's end %d", li.Epoch, li.Version, end.Version)
		}
		if li.EndsEpoch() && li.Hash() != end.Hash() {
			return fmt.Errorf("ledger info ending epoch %d differs from the verified ending", li.Epoch)
		}
	}
	if err := l.VerifySignatures(vs); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
