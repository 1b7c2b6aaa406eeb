package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// InitOptions configures Init.
type InitOptions struct {
	// Config shapes the chain (zero fields take their defaults).
	Config Config
	// InitialAccounts, if not zero, creates that many more accounts right after
	// genesis, in bulk blocks (for large states).
	InitialAccounts uint64
	// AccountValueSize is the value size of the initial accounts (default 100 bytes).
	AccountValueSize int
	// CacheSize is the store's block cache size in bytes (0: the ledgerdb default).
	CacheSize int64
	// Logger receives progress and Pebble's messages (default: discard).
	Logger *slog.Logger
}

// InitResult describes a freshly initialised node directory.
type InitResult struct {
	// Waypoint names the genesis ledger info: the root of trust of restores.
	Waypoint ledger.Waypoint
	// NextVersion is the next version to commit.
	NextVersion uint64
}

// genesisValidators is the content of DIR/genesis-validators.json: the validator set
// of epoch 1, carried by the genesis ledger info.
type genesisValidators struct {
	Epoch      uint64          `json:"epoch"`
	Validators []validatorJSON `json:"validators"`
}

type validatorJSON struct {
	PublicKey   string `json:"public_key"`
	VotingPower uint64 `json:"voting_power"`
}

// Init writes a new node into dir, which must be empty or absent: the validator
// secret (0600), the genesis block in the store, the genesis ledger info, the
// genesis validators' public keys, the waypoint (DIR/waypoint.txt) and finally
// DIR/config.json, which marks the directory as initialised.
func Init(ctx context.Context, dir string, o InitOptions) (InitResult, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := o.Config
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return InitResult{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	if len(entries) > 0 {
		return InitResult{}, fmt.Errorf("node init: %s is not empty (remove it or choose another directory)", dir)
	}
	secret, err := newSecret(dir)
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	db, err := ledgerdb.Open(ctx, filepath.Join(dir, DBDir), ledgerdb.Options{Logger: log, CacheSize: o.CacheSize})
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: open store: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	dc := cfg.devnet(secret)
	wp, err := devnet.Genesis(ctx, db, dc)
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	if o.InitialAccounts > 0 {
		chain, err := devnet.Open(ctx, db, dc)
		if err != nil {
			return InitResult{}, fmt.Errorf("node init: %w", err)
		}
		valueSize := o.AccountValueSize
		if valueSize <= 0 {
			valueSize = defaultAccountValueLen
		}
		log.Info("creating initial accounts", "accounts", o.InitialAccounts, "value_size", valueSize)
		if err := chain.CommitAccounts(ctx, o.InitialAccounts, ledger.MaxWriteOps, valueSize); err != nil {
			return InitResult{}, fmt.Errorf("node init: create initial accounts: %w", err)
		}
	}
	genesis, err := db.EpochEnding(ctx, 0)
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	raw, err := genesis.Encode()
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	if err := renameio.WriteFile(filepath.Join(dir, GenesisLedgerInfoFile), raw, 0o644); err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	gv := genesisValidators{Epoch: 1}
	for _, v := range genesis.LedgerInfo.NextValidatorSet.Validators {
		gv.Validators = append(gv.Validators, validatorJSON{PublicKey: hex.EncodeToString(v.PublicKey), VotingPower: v.VotingPower})
	}
	if err := writeJSON(filepath.Join(dir, GenesisValidatorsFile), &gv, 0o644); err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	if err := renameio.WriteFile(filepath.Join(dir, WaypointFile), []byte(wp.String()+"\n"), 0o644); err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	sum, err := db.Summary(ctx)
	if err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	closed = true
	if err := db.Close(); err != nil {
		return InitResult{}, fmt.Errorf("node init: close store: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, ConfigFile), &cfg, 0o644); err != nil {
		return InitResult{}, fmt.Errorf("node init: %w", err)
	}
	log.Info("node initialised", "dir", dir, "waypoint", wp.String(), "next_version", sum.NextVersion)
	return InitResult{Waypoint: wp, NextVersion: sum.NextVersion}, nil
}

// ReadWaypoint reads DIR/waypoint.txt.
func ReadWaypoint(dir string) (ledger.Waypoint, error) {
	return ReadWaypointFile(filepath.Join(dir, WaypointFile))
}

// ReadWaypointFile reads a waypoint file (one VERSION:HASH line, at most 1 KiB).
func ReadWaypointFile(path string) (ledger.Waypoint, error) {
	b, err := readSmallFile(path, 1<<10)
	if err != nil {
		return ledger.Waypoint{}, err
	}
	var wp ledger.Waypoint
	if err := wp.UnmarshalText(trimNewline(b)); err != nil {
		return ledger.Waypoint{}, fmt.Errorf("%s: %w", path, err)
	}
	return wp, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
