// Package config gives every flag of a cobra command tree two more sources: an
// environment variable named after the flag (LEDGERVAULT_STORAGE for --storage) and
// a YAML configuration file (--config, or the first file of SearchPath). A flag
// given on the command line wins over the environment, the environment over the
// file, the file over the flag's default.
//
// The file's layout (docs/configuration.md): top-level keys are flag values for
// every command that has the flag; a key whose value is a mapping is the section of
// the command of that name, whose keys apply to it and its subcommands, with
// sections of its subcommands inside; the deepest section wins. ${NAME} in a value
// is replaced by the environment variable NAME. Unknown keys are an error.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable of a flag.
const EnvPrefix = "LEDGERVAULT_"

// ConfigFlag is the flag naming the configuration file; its environment variable
// is EnvName(ConfigFlag).
const ConfigFlag = "config"

// FileName is the name of the configuration file looked for on the search path.
const FileName = "ledgervault.yml"

// excluded are flags that neither the environment nor the file set: cobra's help
// and version flags, --config itself (read first, see Install), and flags named
// version elsewhere (LEDGERVAULT_VERSION is too common a variable to mean a
// version to back up).
var excluded = []string{"help", "version", ConfigFlag}

// annotation keys set on flags.
const (
	annotEnv   = "ledgervault_env"   // the flag's usage names its variable
	annotAlias = "ledgervault_alias" // the flag is an alias (see Alias)
)

// EnvName returns the environment variable of the flag named flag:
// LEDGERVAULT_ and the name in capitals with dashes as underscores.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// SearchPath returns, in order, the files used when neither --config nor
// LEDGERVAULT_CONFIG names one: ./ledgervault.yml,
// $XDG_CONFIG_HOME/ledgervault/ledgervault.yml (XDG_CONFIG_HOME defaults to
// $HOME/.config) and /etc/ledgervault/ledgervault.yml. The first that exists is used.
func SearchPath(lookupEnv func(string) (string, bool)) []string {
	paths := []string{"./" + FileName}
	xdg, _ := lookupEnv("XDG_CONFIG_HOME")
	if xdg == "" {
		if home, _ := lookupEnv("HOME"); home != "" {
			xdg = filepath.Join(home, ".config")
		}
	}
	if xdg != "" {
		paths = append(paths, filepath.Join(xdg, "ledgervault", FileName))
	}
	return append(paths, filepath.Join("/etc/ledgervault", FileName))
}

// UsageError is a bad value or name from the environment, the configuration file
// or --config: the command should exit with status 2.
type UsageError struct{ Err error }

// Error returns the message of Err.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *UsageError) Unwrap() error { return e.Err }

// Options configure Install.
type Options struct {
	// LookupEnv reads the environment (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Aliases are the alias flags added wherever their target exists.
	Aliases []Alias
}

// Install adds --config to root, the aliases of o to every command with their
// target flag, the environment variable of each flag to its usage, and a root
// PersistentPreRunE that fills each flag not given on the command line from the
// environment, then from the file. Call it once the command tree is complete.
// Errors it returns from a run are *UsageError. It sets cobra.EnableTraverseRunHooks
// so that a subcommand's own PersistentPreRunE does not hide the root's.
func Install(root *cobra.Command, o Options) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	root.PersistentFlags().String(ConfigFlag, "", fmt.Sprintf("YAML configuration file (env %s; default: the first of %s that exists; '' for none)",
		EnvName(ConfigFlag), strings.Join(SearchPath(func(k string) (string, bool) {
			if k == "XDG_CONFIG_HOME" {
				return "$XDG_CONFIG_HOME", true
			}
			return "", false
		}), ", ")))
	for _, a := range o.Aliases {
		addAlias(root, a)
	}
	walk(root, func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.Flags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if settable(f) && f.Annotations[annotEnv] == nil {
					f.Usage += " (env " + EnvName(f.Name) + ")"
					setAnnotation(f, annotEnv, "1")
				}
			})
		}
	})
	cobra.EnableTraverseRunHooks = true
	prev := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		f, err := Find(cmd, o.LookupEnv)
		if err != nil {
			return &UsageError{err}
		}
		if f != nil {
			if err := f.Check(cmd.Root()); err != nil {
				return &UsageError{err}
			}
		}
		if err := Apply(cmd, f, o.LookupEnv); err != nil {
			return &UsageError{err}
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// Find loads the configuration file of cmd: --config if given (” for none), else
// LEDGERVAULT_CONFIG, else the first file of SearchPath that exists; nil when there
// is none.
func Find(cmd *cobra.Command, lookupEnv func(string) (string, bool)) (*File, error) {
	if fl := cmd.Flags().Lookup(ConfigFlag); fl != nil && fl.Changed {
		if fl.Value.String() == "" {
			return nil, nil
		}
		return load("--"+ConfigFlag, fl.Value.String())
	}
	if p, ok := lookupEnv(EnvName(ConfigFlag)); ok {
		if p == "" {
			return nil, nil
		}
		return load(EnvName(ConfigFlag), p)
	}
	for _, p := range SearchPath(lookupEnv) {
		if _, err := os.Stat(p); err == nil {
			return load("search path", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s (search path): %w", p, err)
		}
	}
	return nil, nil
}

func load(from, path string) (*File, error) {
	f, err := Load(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return f, nil
}

// Apply sets every flag of cmd that was not given on the command line from its
// environment variable (an empty value counts as unset), else from f (which may be
// nil), and marks it changed. Errors name the variable, or the file, line and key.
func Apply(cmd *cobra.Command, f *File, lookupEnv func(string) (string, bool)) error {
	if err := checkAliases(cmd); err != nil {
		return err
	}
	cmds := commandNames(cmd)
	var errs []error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || !settable(fl) {
			return
		}
		env := EnvName(fl.Name)
		if v, ok := lookupEnv(env); ok && v != "" {
			if err := set(fl, []string{v}, false); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q (--%s): %w", env, v, fl.Name, err))
			}
			return
		}
		if f == nil {
			return
		}
		fv, ok := f.lookup(cmds, fl.Name)
		if !ok {
			return
		}
		vals, err := fv.strings(f, lookupEnv)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if err := set(fl, vals, fv.node.Kind == yaml.SequenceNode); err != nil {
			errs = append(errs, f.errAt(fv.node, fv.key, fmt.Sprintf("%v (--%s)", err, fl.Name)))
		}
	})
	return errors.Join(errs...)
}

// set gives fl the values vals (one unless list) and marks it changed.
func set(fl *pflag.Flag, vals []string, list bool) error {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		if !list {
			if err := fl.Value.Set(vals[0]); err != nil { // a slice flag parses its own list syntax
				return err
			}
		} else if err := sv.Replace(vals); err != nil {
			return err
		}
		fl.Changed = true
		return nil
	}
	if list {
		return errors.New("a list given for a flag that takes one value")
	}
	if err := fl.Value.Set(vals[0]); err != nil {
		return err
	}
	fl.Changed = true
	return nil
}

// Check reports every key of f that names neither a command of root's tree (a
// section) nor a flag of that command or its subcommands (a value), and every list
// given for a flag that takes one value.
func (f *File) Check(root *cobra.Command) error {
	var errs []error
	f.check(f.root, root, &errs)
	return errors.Join(errs...)
}

func (f *File) check(s *section, cmd *cobra.Command, errs *[]error) {
	names := map[string]*pflag.Flag{}
	walk(cmd, func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags(), c.InheritedFlags()} {
			fs.VisitAll(func(fl *pflag.Flag) {
				if settable(fl) {
					names[fl.Name] = fl
				}
			})
		}
	})
	for _, k := range sortedKeys(s.values) {
		n := s.values[k]
		fl, ok := names[k]
		if !ok {
			*errs = append(*errs, f.errAt(n, join(s.path, k), fmt.Sprintf("unknown key: no command %q has a flag --%s", cmd.CommandPath(), k)))
			continue
		}
		if _, isSlice := fl.Value.(pflag.SliceValue); n.Kind == yaml.SequenceNode && !isSlice {
			*errs = append(*errs, f.errAt(n, join(s.path, k), fmt.Sprintf("--%s takes one value, not a list", k)))
		}
	}
	for _, k := range sortedKeys(s.sections) {
		sub := s.sections[k]
		var child *cobra.Command
		for _, c := range cmd.Commands() {
			if c.Name() == k {
				child = c
			}
		}
		if child == nil {
			*errs = append(*errs, f.errAt(sub.key, sub.path, fmt.Sprintf("unknown key: %q has no subcommand %q", cmd.CommandPath(), k)))
			continue
		}
		f.check(sub, child, errs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// settable reports whether the environment and the file may set fl.
func settable(fl *pflag.Flag) bool {
	return !slices.Contains(excluded, fl.Name) && fl.Annotations[annotAlias] == nil
}

// commandNames returns the names of cmd and its parents below the root, outermost
// first.
func commandNames(cmd *cobra.Command) []string {
	var out []string
	for c := cmd; c.HasParent(); c = c.Parent() {
		out = append([]string{c.Name()}, out...)
	}
	return out
}

// walk calls fn on cmd and every command below it.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		walk(c, fn)
	}
}

func setAnnotation(f *pflag.Flag, key, value string) {
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[key] = []string{value}
}
