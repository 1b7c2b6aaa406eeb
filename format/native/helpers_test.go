package native

import "github.com/ledgervault/ledgervault/storage"

func stringHandle(s string) storage.FileHandle { return storage.FileHandle(s) }
