package ledgerdb

import (
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// TestIsLockConflict: Pebble's bare fcntl errors are a lock held by another
// process; an EACCES on creating the LOCK file is a permission problem.
func TestIsLockConflict(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{syscall.EAGAIN, true},
		{fmt.Errorf("pebble: %w", syscall.EACCES), true},
		{&fs.PathError{Op: "open", Path: "db/LOCK", Err: syscall.EACCES}, false},
		{syscall.ENOSPC, false},
	} {
		if got := isLockConflict(c.err); got != c.want {
			t.Errorf("isLockConflict(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
