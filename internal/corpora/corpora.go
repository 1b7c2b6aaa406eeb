// Package corpora finds the real backup-cli stores in shared/corpora for tests.
package corpora

import (
	"errors"
	"os"
	"path/filepath"
)

// Dir returns the corpora directory: $LEDGERVAULT_CORPORA, or the first
// "shared/corpora" found walking up from the working directory.
func Dir() (string, error) {
	if d := os.Getenv("LEDGERVAULT_CORPORA"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, "shared", "corpora")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("shared/corpora not found above " + wd + " (set LEDGERVAULT_CORPORA)")
		}
	}
}

// Aptos returns the store root of aptos-libra7 (its snapshots/ folder) and the
// path of its epoch-archive.yaml.
func Aptos() (root, config string, err error) {
	d, err := Dir()
	if err != nil {
		return "", "", err
	}
	return filepath.Join(d, "aptos-libra7", "snapshots"), filepath.Join(d, "aptos-libra7", "epoch-archive.yaml"), nil
}

// DiemStores are the five stores of diem-0l-v5.
var DiemStores = []string{"14", "77", "89", "104", "155"}

// Diem returns the root of one diem-0l-v5 store.
func Diem(store string) (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "diem-0l-v5", store), nil
}

// CopyTree copies the directory src to dst (created), files made writable, for
// tests that damage a copy.
func CopyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return err
		}
		return os.Chtimes(target, fi.ModTime(), fi.ModTime())
	})
}
