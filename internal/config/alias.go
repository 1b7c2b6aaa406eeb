package config

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Alias is a second name for a flag, such as a name other tools' scripts use: a
// hidden string flag that, when given, sets Target to Map(value) (the value itself
// when Map is nil). It is added beside Target on every command that has Target, is
// command-line only (no environment variable or file key), and giving both it and
// Target with different meanings is a usage error.
type Alias struct {
	// Name is the alias flag's name (without dashes).
	Name string
	// Target is the name of the flag it sets.
	Target string
	// Map turns the alias's value into the target's (nil: unchanged).
	Map func(string) (string, error)
}

// aliasValue is the pflag.Value of an alias flag.
type aliasValue struct {
	a      Alias
	target *pflag.Flag
	given  string // the alias's last value
	set    string // what it gave the target
}

func (v *aliasValue) String() string { return v.given }

func (v *aliasValue) Type() string { return v.target.Value.Type() }

func (v *aliasValue) Set(s string) error {
	t := s
	if v.a.Map != nil {
		var err error
		if t, err = v.a.Map(s); err != nil {
			return err
		}
	}
	if v.target.Changed && v.target.Value.String() != t {
		return fmt.Errorf("--%s %s and --%s %s say different things; give one", v.a.Name, s, v.a.Target, v.target.Value.String())
	}
	if err := v.target.Value.Set(t); err != nil {
		return err
	}
	v.target.Changed = true
	v.given, v.set = s, t
	return nil
}

// addAlias adds a beside its target on every command of root's tree that defines
// the target (as a persistent flag when the target is one).
func addAlias(root *cobra.Command, a Alias) {
	walk(root, func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.LocalNonPersistentFlags()} {
			t := fs.Lookup(a.Target)
			if t == nil || fs.Lookup(a.Name) != nil {
				continue
			}
			// LocalNonPersistentFlags is a copy: add to the set cobra parses.
			dst := fs
			if fs != c.PersistentFlags() {
				dst = c.Flags()
			}
			if dst.Lookup(a.Name) != nil {
				continue
			}
			dst.Var(&aliasValue{a: a, target: t}, a.Name, fmt.Sprintf("alias of --%s", a.Target))
			fl := dst.Lookup(a.Name)
			fl.Hidden = true
			setAnnotation(fl, annotAlias, a.Target)
			t.Usage += fmt.Sprintf(" (alias --%s)", a.Name)
		}
	})
}

// checkAliases reports an alias whose value the target no longer holds: the target
// was given after it with another meaning.
func checkAliases(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		v, ok := fl.Value.(*aliasValue)
		if !ok || !fl.Changed || err != nil {
			return
		}
		if got := v.target.Value.String(); got != v.set {
			err = fmt.Errorf("--%s %s and --%s %s say different things; give one", v.a.Name, v.given, v.a.Target, got)
		}
	})
	return err
}
