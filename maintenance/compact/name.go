package compact

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
)

// Prefix starts the name of every compacted metadata file.
const Prefix = "compacted_"

// timeLayout is the UTC creation time in a compacted file's name.
const timeLayout = "20060102T150405Z"

// maxParts bounds the part number in a compacted file name.
const maxParts = 1 << 20

// Name is what the name of a compacted metadata file says:
// compacted_<UTC creation time>-<run id>-<part>.meta. All parts written by one run
// share the time and the run id.
type Name struct {
	// Created is when the run that wrote the file started, to the second.
	Created time.Time
	// Run is the random id of the run (16 hex digits).
	Run string
	// Part numbers the files of one run from 0.
	Part int
}

// String returns the file name.
func (n Name) String() string {
	return fmt.Sprintf("%s%s-%s-%d%s", Prefix, n.Created.UTC().Format(timeLayout), n.Run, n.Part, catalog.Suffix)
}

// newRun returns the name of part 0 of a run whose files are written from now on.
// The time is rounded up to the second, so a file is never older than its name says.
func newRun(now time.Time) (Name, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Name{}, fmt.Errorf("random run id: %w", err)
	}
	created := now.UTC().Truncate(time.Second)
	if created.Before(now) {
		created = created.Add(time.Second)
	}
	return Name{Created: created, Run: hex.EncodeToString(b[:])}, nil
}

// ParseName parses the base name of a compacted metadata file. Names that do not
// follow the pattern exactly are not compacted files (ok is false): they are treated
// like any other metadata file, never as a basis for deleting others.
func ParseName(base string) (n Name, ok bool) {
	if len(base) > 200 || !strings.HasPrefix(base, Prefix) || !strings.HasSuffix(base, catalog.Suffix) {
		return Name{}, false
	}
	fields := strings.Split(base[len(Prefix):len(base)-len(catalog.Suffix)], "-")
	if len(fields) != 3 || len(fields[0]) != len(timeLayout) || len(fields[1]) != 16 {
		return Name{}, false
	}
	t, err := time.Parse(timeLayout, fields[0])
	if err != nil {
		return Name{}, false
	}
	if _, err := hex.DecodeString(fields[1]); err != nil || strings.ToLower(fields[1]) != fields[1] {
		return Name{}, false
	}
	part, err := strconv.Atoi(fields[2])
	if err != nil || part < 0 || part >= maxParts || strconv.Itoa(part) != fields[2] {
		return Name{}, false
	}
	return Name{Created: t, Run: fields[1], Part: part}, true
}
