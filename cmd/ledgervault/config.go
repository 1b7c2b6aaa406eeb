package main

import (
	"errors"
	"net/url"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/config"
)

// exitUsage is the status of a usage error found in the environment or the
// configuration file.
const exitConfigUsage = 2

// aptosAliases are the flag names of Aptos' backup-cli and db-tool that mean the
// same as ours (docs/configuration.md).
var aptosAliases = []config.Alias{
	{Name: "command-adapter-config", Target: "command-config"},
	{Name: "local-fs-dir", Target: "storage", Map: localFSURL},
	{Name: "target-db-dir", Target: "db"},
}

// localFSURL turns a directory into the file:// URL of local storage.
func localFSURL(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: abs}).String(), nil
}

// installConfig gives every flag of root's tree its environment variable and
// configuration file key (package config) and adds the Aptos aliases; errors from
// either exit with status 2.
func installConfig(root *cobra.Command) {
	config.Install(root, config.Options{Aliases: aptosAliases})
	pre := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		err := pre(cmd, args)
		if ue := (*config.UsageError)(nil); errors.As(err, &ue) {
			return &cli.ExitError{Code: exitConfigUsage, Err: err}
		}
		return err
	}
}
