package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest configuration file Load reads.
const MaxFileSize = 1 << 20

// File is a parsed configuration file: top-level keys are flag values for every
// command that has the flag; a key whose value is a mapping is the section of the
// command of that name, holding flag values for that command and its subcommands
// and the sections of its subcommands. A deeper section wins over its parents.
type File struct {
	// Path is the file the configuration was read from.
	Path string
	root *section
}

// section is one level of the file: flag values and subcommand sections.
type section struct {
	values   map[string]*yaml.Node
	sections map[string]*section
	// path is the dotted key path of the section ("" at the top).
	path string
	// key is the section's key in the file (nil at the top).
	key *yaml.Node
}

// Load reads and parses the configuration file at path. It checks the layout
// (mappings of string keys, scalar or list values, no duplicate key) but not the
// names: see File.Check.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, b)
}

// Parse parses the content b of the configuration file named path.
func Parse(path string, b []byte) (*File, error) {
	f := &File{Path: path, root: &section{values: map[string]*yaml.Node{}, sections: map[string]*section{}}}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 { // empty file
		return f, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("config file %s: want one YAML document", path)
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return f, nil
	}
	if err := f.fill(f.root, top, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// maxDepth bounds the nesting of sections (commands are at most a few deep).
const maxDepth = 8

func (f *File) fill(s *section, n *yaml.Node, depth int) error {
	if n.Kind != yaml.MappingNode {
		return f.errAt(n, s.path, "want a mapping of flag names and command sections")
	}
	if depth > maxDepth {
		return f.errAt(n, s.path, "sections nested too deep")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" && k.Tag != "" {
			return f.errAt(k, s.path, "keys must be flag or command names")
		}
		name := k.Value
		path := join(s.path, name)
		if _, dup := s.values[name]; dup {
			return f.errAt(k, path, "given twice")
		}
		if _, dup := s.sections[name]; dup {
			return f.errAt(k, path, "given twice")
		}
		switch v.Kind {
		case yaml.MappingNode:
			sub := &section{values: map[string]*yaml.Node{}, sections: map[string]*section{}, path: path, key: k}
			if err := f.fill(sub, v, depth+1); err != nil {
				return err
			}
			s.sections[name] = sub
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				return f.errAt(v, path, "no value")
			}
			s.values[name] = v
		case yaml.SequenceNode:
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
					return f.errAt(e, path, "list items must be plain values")
				}
			}
			s.values[name] = v
		default:
			return f.errAt(v, path, "want a value, a list or a section (no anchors or aliases)")
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (f *File) errAt(n *yaml.Node, key, msg string) error {
	if key == "" {
		return fmt.Errorf("config file %s:%d: %s", f.Path, n.Line, msg)
	}
	return fmt.Errorf("config file %s:%d: %s: %s", f.Path, n.Line, key, msg)
}

// fileValue is a flag value found in the file.
type fileValue struct {
	node *yaml.Node
	key  string // dotted path of the key
}

// lookup returns the value of flag for the command path cmds (the names below the
// root), the deepest section's first.
func (f *File) lookup(cmds []string, flag string) (fileValue, bool) {
	var found fileValue
	ok := false
	s := f.root
	for i := 0; ; i++ {
		if v, has := s.values[flag]; has {
			found, ok = fileValue{node: v, key: join(s.path, flag)}, true
		}
		if i == len(cmds) {
			return found, ok
		}
		if s = s.sections[cmds[i]]; s == nil {
			return found, ok
		}
	}
}

// strings returns the value's text (one item for a scalar), with ${NAME} replaced
// from the environment by lookupEnv.
func (v fileValue) strings(f *File, lookupEnv func(string) (string, bool)) ([]string, error) {
	items := []*yaml.Node{v.node}
	if v.node.Kind == yaml.SequenceNode {
		items = v.node.Content
	}
	out := make([]string, 0, len(items))
	for _, n := range items {
		s, err := expand(n.Value, lookupEnv)
		if err != nil {
			return nil, f.errAt(n, v.key, err.Error())
		}
		out = append(out, s)
	}
	return out, nil
}

var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces every ${NAME} in s with the environment variable NAME; an unset
// variable or a malformed reference is an error.
func expand(s string, lookupEnv func(string) (string, bool)) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if !varName.MatchString(name) {
			err = errors.Join(err, fmt.Errorf("%s is not a variable reference (want ${NAME})", ref))
			return ref
		}
		v, ok := lookupEnv(name)
		if !ok {
			err = errors.Join(err, fmt.Errorf("environment variable %s is not set", name))
		}
		return v
	})
	return out, err
}
