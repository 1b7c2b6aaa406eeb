package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Get()
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "ledgervault %s\ncommit:     %s\nbuilt:      %s\ngo version: %s\n",
				i.Version, i.Commit, i.Date, i.GoVersion)
			return err
		},
	}
}

// setRootVersion gives root a --version flag printing the one-line version.
func setRootVersion(root *cobra.Command) {
	root.Version = buildinfo.String()
	root.SetVersionTemplate("ledgervault {{.Version}}\n")
}
