package aptos

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// Waypoint is a trusted "version:hash" commitment to a ledger info (aptos-core's
// Waypoint): the hash is the CryptoHash of the Ledger2WaypointConverter of the ledger
// info (its epoch, accumulator root, version, timestamp and next epoch state).
type Waypoint struct {
	// Version is the ledger info's version.
	Version uint64
	// Value is the converter's hash.
	Value HashValue
}

// String returns "version:hex", the form of waypoint.txt files and manifests.
func (w Waypoint) String() string { return strconv.FormatUint(w.Version, 10) + ":" + w.Value.String() }

// ParseWaypoint parses "version:hex" (surrounding white space is ignored).
func ParseWaypoint(s string) (Waypoint, error) {
	s = strings.TrimSpace(s)
	v, h, ok := strings.Cut(s, ":")
	if !ok {
		return Waypoint{}, fmt.Errorf("parse waypoint %q: want VERSION:HASH", s)
	}
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return Waypoint{}, fmt.Errorf("parse waypoint %q: version: %w", s, err)
	}
	value, err := ParseHashValue(h)
	if err != nil {
		return Waypoint{}, fmt.Errorf("parse waypoint %q: %w", s, err)
	}
	return Waypoint{Version: version, Value: value}, nil
}

// Waypoint returns the waypoint of any ledger info in domain d (aptos-core's
// Waypoint::new_any).
func (d *Domain) Waypoint(li *LedgerInfo) Waypoint {
	b := make([]byte, 0, 8+32+8+8+len(li.nextEpochRaw))
	b = bcs.AppendU64(b, li.Epoch())
	b = append(b, li.CommitInfo.ExecutedStateID[:]...)
	b = bcs.AppendU64(b, li.Version())
	b = bcs.AppendU64(b, li.CommitInfo.TimestampUsecs)
	if li.nextEpochRaw != nil {
		b = append(b, li.nextEpochRaw...)
	} else {
		b = append(b, 0) // None; a decoded ledger info always has nextEpochRaw
	}
	return Waypoint{Version: li.Version(), Value: HashWithSeed(d.waypoint, b)}
}

// DetectDomain returns the known domain in which li's waypoint equals trusted, or an
// error when none does: the trusted waypoint decides a store's hash domain.
func DetectDomain(trusted Waypoint, li *LedgerInfo) (*Domain, error) {
	if li.Version() != trusted.Version {
		return nil, fmt.Errorf("ledger info at version %d, trusted waypoint at version %d", li.Version(), trusted.Version)
	}
	var got []string
	for _, d := range KnownDomains {
		w := d.Waypoint(li)
		if w == trusted {
			return d, nil
		}
		got = append(got, fmt.Sprintf("%s under %q", w, d.prefix))
	}
	return nil, fmt.Errorf("ledger info of epoch %d does not match trusted waypoint %s (it hashes to %s)",
		li.Epoch(), trusted, strings.Join(got, ", "))
}
