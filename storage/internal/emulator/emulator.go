// Package emulator starts the storage emulators the backend tests run against, all
// on 127.0.0.1: gofakes3 (S3) and fake-gcs-server (GCS) in process, and Azurite
// (Azure Blob) found through LEDGERVAULT_TEST_AZURITE, which scripts/emulators.sh
// exports after starting it.
package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// Missing skips the test because an emulator is not available, or fails it when
// CI=true, where every emulator must be present.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("emulator missing under CI=true: "+format, args...)
	}
	t.Skipf("emulator missing (run through scripts/test.sh to start it): "+format, args...)
}

// UniqueName returns a lower-case name with the given prefix and a random suffix,
// valid as a bucket or container name.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return strings.ToLower(prefix) + "-" + hex.EncodeToString(b[:])
}
