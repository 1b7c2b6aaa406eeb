package compact

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
)

// newRun returns the name of part 0 of a run whose files are written from now on.
// The time is rounded up to the second, so a file is never older than its name says.
func newRun(now time.Time) (native.CompactedName, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return native.CompactedName{}, fmt.Errorf("random run id: %w", err)
	}
	created := now.UTC().Truncate(time.Second)
	if created.Before(now) {
		created = created.Add(time.Second)
	}
	return native.CompactedName{Created: created, Run: hex.EncodeToString(b[:])}, nil
}
