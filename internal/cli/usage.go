package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/storage"
)

// ExitUsage is the exit status of every usage error: a bad flag value, an unknown
// flag or command, a missing required flag, a bad argument, or a bad value from the
// environment or the configuration file.
const ExitUsage = 2

// Usage marks err as a usage error (exit status ExitUsage); nil stays nil and an
// error that already carries an exit status keeps it.
func Usage(err error) error {
	var ee *ExitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

// Usagef returns a usage error formatted as fmt.Errorf does.
func Usagef(format string, a ...any) error { return Usage(fmt.Errorf(format, a...)) }

// StoreUsage makes an error of opening the store that flag selects (--storage,
// --command-config) a usage error naming the flag when it is a configuration error
// (storage.ErrConfig: a malformed URL, a command config that does not parse);
// other errors are returned unchanged.
func StoreUsage(flag string, err error) error {
	if errors.Is(err, storage.ErrConfig) {
		return Usage(fmt.Errorf("--%s: %w", flag, err))
	}
	return err
}

// prepareUsage makes cobra's own usage errors in root's tree usage errors: flag
// errors (unknown flags, values a flag's Set refuses), argument errors, missing
// required flags and flag groups, and unknown subcommands. A command with
// subcommands and nothing to run prints its help when called alone.
func prepareUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage(err) })
	walkCommands(root, func(c *cobra.Command) {
		if c.Annotations[annotPrepared] != "" {
			return
		}
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[annotPrepared] = "1"
		if c.HasSubCommands() && !c.Runnable() {
			if c.Args == nil {
				c.Args = noSubcommand
			}
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error { return Usage(args(c, a)) }
		}
		pre, preE := c.PreRun, c.PreRunE
		c.PreRun = nil
		c.PreRunE = func(c *cobra.Command, a []string) error {
			// cobra checks these after PreRunE too; checked here, a missing flag is
			// a usage error. The configuration file and environment were applied by
			// then (the root's PersistentPreRunE).
			if err := c.ValidateRequiredFlags(); err != nil {
				return Usage(err)
			}
			if err := c.ValidateFlagGroups(); err != nil {
				return Usage(err)
			}
			switch {
			case preE != nil:
				return preE(c, a)
			case pre != nil:
				pre(c, a)
			}
			return nil
		}
	})
}

// annotPrepared marks a command prepareUsage has changed.
const annotPrepared = "ledgervault_usage_prepared"

// noSubcommand is the argument check of a command that only groups subcommands.
func noSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return errors.New(msg + "; see " + c.CommandPath() + " --help")
}

func walkCommands(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, fn)
	}
}

// OpenedStore returns the result of opening the store flag selects: st, or a nil
// store and err made a usage error naming flag when it is a configuration error
// (see StoreUsage).
func OpenedStore[S storage.Store](flag string, st S, err error) (storage.Store, error) {
	if err != nil {
		return nil, StoreUsage(flag, err)
	}
	return st, nil
}
