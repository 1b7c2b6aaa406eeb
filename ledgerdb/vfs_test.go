package ledgerdb_test

import "github.com/cockroachdb/pebble/v2/vfs"

func vfsCreate(path string) (vfs.File, error) { return vfs.Default.Create(path, "") }
