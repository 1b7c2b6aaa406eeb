// Package node is a development ledger node in one process: Init writes a genesis
// (validator secret, configuration, genesis ledger info and waypoint) into a
// directory, and Run commits a synthetic workload to the store there while serving
// the backup service and Prometheus metrics.
//
// Keys: every epoch's validator keys derive from one random chain secret kept in
// DIR/validator-secret (mode 0600), so that a restarted node signs with the same
// keys. This is a development convenience: a real network keeps each validator's key
// on that validator, never next to the database.
package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
)

// Files of a node directory.
const (
	ConfigFile             = "config.json"
	SecretFile             = "validator-secret"
	GenesisValidatorsFile  = "genesis-validators.json"
	GenesisLedgerInfoFile  = "genesis-ledger-info.cbor"
	WaypointFile           = "waypoint.txt"
	DBDir                  = "db"
	maxConfigFileSize      = 64 << 10
	secretSize             = 32
	maxSecretFileSize      = 1 << 10
	defaultAccountValueLen = 100
)

// Config shapes the chain; Init writes it to DIR/config.json and Run reads it back so
// that restarts continue the same chain.
type Config struct {
	// Validators is the number of validators per epoch (default 4).
	Validators int `json:"validators"`
	// EpochLength is the number of versions per epoch (default 1000).
	EpochLength uint64 `json:"epoch_length"`
	// BlockSize is the most transactions per block (default 100).
	BlockSize int `json:"block_size"`
	// GenesisAccounts is the number of accounts created at genesis (default 100, at
	// most 65536).
	GenesisAccounts int `json:"genesis_accounts"`
	// Seed makes the workload deterministic.
	Seed uint64 `json:"seed"`
	// LargeValueEvery puts a large value in one transaction out of this many (0: never).
	LargeValueEvery int `json:"large_value_every"`
	// LargeValueSize is the size of an occasional large value (default 64 KiB).
	LargeValueSize int `json:"large_value_size"`
}

func (c *Config) defaults() {
	if c.Validators <= 0 {
		c.Validators = 4
	}
	if c.EpochLength == 0 {
		c.EpochLength = 1000
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 100
	}
	if c.GenesisAccounts <= 0 {
		c.GenesisAccounts = 100
	}
	if c.LargeValueSize <= 0 {
		c.LargeValueSize = 64 << 10
	}
}

func (c *Config) validate() error {
	switch {
	case c.Validators > ledger.MaxValidators:
		return fmt.Errorf("config: %d validators, at most %d", c.Validators, ledger.MaxValidators)
	case c.GenesisAccounts > ledger.MaxWriteOps:
		return fmt.Errorf("config: %d genesis accounts, at most %d (use initial accounts for more)", c.GenesisAccounts, ledger.MaxWriteOps)
	case c.BlockSize > 100_000:
		return fmt.Errorf("config: block size %d, at most 100000", c.BlockSize)
	case c.LargeValueSize > ledger.MaxValueSize:
		return fmt.Errorf("config: large value size %d, at most %d", c.LargeValueSize, ledger.MaxValueSize)
	case c.LargeValueEvery < 0:
		return fmt.Errorf("config: negative large value frequency")
	}
	return nil
}

func (c *Config) devnet(secret []byte) devnet.Config {
	return devnet.Config{
		Secret:          secret,
		Validators:      c.Validators,
		EpochLength:     c.EpochLength,
		BlockSize:       c.BlockSize,
		GenesisAccounts: c.GenesisAccounts,
		Seed:            c.Seed,
		LargeValueEvery: c.LargeValueEvery,
		LargeValueSize:  c.LargeValueSize,
	}
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// loadConfig reads DIR/config.json.
func loadConfig(dir string) (Config, error) {
	b, err := readSmallFile(filepath.Join(dir, ConfigFile), maxConfigFileSize)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("%s is not an initialised node directory (no %s): run `ledgervault node init --dir %s` first", dir, ConfigFile, dir)
	}
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return c, nil
}

func writeJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(path, append(b, '\n'), perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// newSecret generates a chain secret and writes it (hex) to DIR/validator-secret with
// mode 0600.
func newSecret(dir string) ([]byte, error) {
	secret := make([]byte, secretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate validator secret: %w", err)
	}
	path := filepath.Join(dir, SecretFile)
	if err := renameio.WriteFile(path, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return secret, nil
}

// loadSecret reads DIR/validator-secret and refuses it if others can read it.
func loadSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, SecretFile)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("validator secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("validator secret %s has mode %v: it must be readable by its owner only (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	b, err := readSmallFile(path, maxSecretFileSize)
	if err != nil {
		return nil, fmt.Errorf("validator secret: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("validator secret %s: want at least 16 bytes of hex", path)
	}
	return secret, nil
}
