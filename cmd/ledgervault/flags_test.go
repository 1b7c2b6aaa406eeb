package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgervault/ledgervault/internal/cli"
)

// unchecked are the numeric and string flags whose every value is valid, so they
// need no range or word list: versions and epochs (any uint64 names one; ranges
// are checked against each other by the command), seeds, and free-form strings.
var unchecked = []string{
	"start-epoch", "end-epoch", "epoch", "version", "start-version", "from-version", "to-version",
	"until-version", "state-snapshot-interval-epochs", "seed", "initial-accounts",
}

// enums are the string flags that take one of a few words.
var enums = []string{"log-level", "log-format", "progress", "format"}

// TestEveryFlagIsValidated walks every command and fails on a number or duration
// flag that is not defined through internal/cli's checked flags (a value out of
// range would reach the command, or be silently replaced by a default), so a new
// flag cannot skip validation.
func TestEveryFlagIsValidated(t *testing.T) {
	root := newRootCmd()
	seen := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalNonPersistentFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(fl *pflag.Flag) {
				if slices.Contains(enums, fl.Name) && !cli.IsValidated(fl) {
					t.Errorf("%s --%s takes one of a few words but is not an EnumVar", c.CommandPath(), fl.Name)
				}
				switch fl.Value.Type() {
				case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "duration":
				default:
					return
				}
				seen++
				if !cli.IsValidated(fl) && !slices.Contains(unchecked, fl.Name) {
					t.Errorf("%s --%s (%s) is not a checked flag (internal/cli IntVar, DurationVar, ...)", c.CommandPath(), fl.Name, fl.Value.Type())
				}
				if cli.IsValidated(fl) && slices.Contains(unchecked, fl.Name) {
					t.Errorf("%s --%s is checked but listed as unchecked", c.CommandPath(), fl.Name)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if seen < 30 {
		t.Fatalf("only %d number flags found: the walk misses commands", seen)
	}
}
