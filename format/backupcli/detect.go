package backupcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/ledgervault/ledgervault/storage"
)

// Format names a backup store format.
type Format string

// The formats Detect tells apart.
const (
	// FormatUnknown: no metadata line to decide on, or a line neither format writes.
	FormatUnknown Format = ""
	// FormatBackupCLI is the Aptos/Diem backup-cli format read by this package.
	FormatBackupCLI Format = "backupcli"
	// FormatLedgerVault is ledgervault's own format (backup/manifest).
	FormatLedgerVault Format = "ledgervault"
)

// Detect tells the format from the first line of a metadata file. backup-cli lines
// are externally tagged enums, an object with a single key naming the variant
// ({"EpochEndingBackup":{...}}); ledgervault's lines are flat objects carrying
// "format" and "type" keys ({"format":1,"type":"epoch_ending",...}). A gzip layer
// must have been removed first (Decompress).
func Detect(line []byte) Format {
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if len(line) > MaxMetadataLineSize {
		return FormatUnknown
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return FormatUnknown
	}
	if _, ok := obj["format"]; ok {
		if _, ok := obj["type"]; ok {
			return FormatLedgerVault
		}
	}
	if len(obj) == 1 {
		for k := range obj {
			switch Kind(k) {
			case KindEpochEnding, KindStateSnapshot, KindTransaction, KindIdentity, KindCompactionTimestamps:
				return FormatBackupCLI
			}
		}
	}
	return FormatUnknown
}

// DetectStore tells a store's format from its metadata: the first line of the first
// non-empty metadata file (in handle order) that reads. It returns FormatUnknown
// when the store holds no metadata line at all.
func DetectStore(ctx context.Context, src Source) (Format, error) {
	hs, err := src.ListMetadata(ctx)
	if err != nil {
		return FormatUnknown, fmt.Errorf("detect format: list metadata: %w", err)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	for _, h := range hs {
		data, _, err := ReadFile(ctx, src, h, MaxMetadataFileSize)
		if err != nil {
			if IsDecodeError(err) || errors.Is(err, storage.ErrNotFound) {
				continue // an audit reports it; another file decides
			}
			return FormatUnknown, fmt.Errorf("detect format: %w", err)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		if f := Detect(data); f != FormatUnknown {
			return f, nil
		}
	}
	return FormatUnknown, nil
}
