package shell_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/storage/shell"
)

// goTerms are what a YAML decoding error says in Go's terms rather than the
// file's: a Go type (shell.Config, []shell.EnvVar), a YAML tag, "unmarshal".
var goTerms = regexp.MustCompile(`shell\.|\[\]|!!|unmarshal|map\[|struct`)

// TestConfigErrorsSpeakTheFilesTerms: a command config of the wrong shape is
// refused with the line, the key and what the key wants, never Go's type names
// (issue 15 item 7: "cannot unmarshal !!seq into shell.Commands").
func TestConfigErrorsSpeakTheFilesTerms(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"- a\n", "line 1: want a mapping with env_vars and commands, not a list"},
		{"commands: [1, 2]\n", "line 1: commands: want a mapping of operation names to shell commands, not a list"},
		{"commands:\n  create_backup: [a]\n", "line 2: commands.create_backup: want a string, not a list"},
		{"commands:\n  list_metadata_files: x\n  create_backup: {a: 1}\n", "line 3: commands.create_backup: want a string, not a mapping"},
		{"env_vars: 5\n", "line 1: env_vars: want a list of entries with key and value, not a number"},
		{"env_vars:\n  - a\n", "line 2: env_vars[0]: want a mapping with key and value, not a string"},
		{"commandz:\n  a: b\n", `line 1: unknown key "commandz" at the top level (known: env_vars, commands)`},
		{"commands:\n  create_bakup: x\n", `line 2: unknown key "create_bakup" under commands`},
		{"env_vars:\n  - key: A\n    valu: b\n", `line 3: unknown key "valu" in an env_vars entry (known: key, value)`},
	} {
		_, err := shell.ParseConfig([]byte(c.yaml))
		if err == nil {
			t.Errorf("ParseConfig(%q) accepted it", c.yaml)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q) = %q, want it to say %q", c.yaml, err, c.want)
		}
		if goTerms.MatchString(err.Error()) {
			t.Errorf("ParseConfig(%q) = %q names Go types", c.yaml, err)
		}
	}
}

// FuzzParseConfig: no input makes ParseConfig panic, and no error it returns for
// a document of the wrong shape speaks in Go's types.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"commands:\n  create_backup: a\n", "- a\n", "env_vars: 5\n", "commands: [1]\n",
		"env_vars:\n  - key: A\n    value: [b]\n", "commands:\n  create_backup: {a: [1, {b: c}]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := shell.ParseConfig(b)
		if err == nil {
			return
		}
		for _, goWord := range []string{"shell.", "unmarshal"} {
			// The YAML parser may quote the input in a syntax error.
			if strings.Contains(err.Error(), goWord) && !strings.Contains(string(b), goWord) {
				t.Fatalf("ParseConfig(%q) = %q names Go types", b, err)
			}
		}
	})
}
