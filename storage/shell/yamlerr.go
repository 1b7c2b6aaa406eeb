package shell

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML decoder describes type mismatches in Go's terms ("cannot unmarshal !!str
// into shell.Commands", "field x not found in type shell.Config"). yamlError says
// the same in the file's terms: the line, the key and what the key wants.

// yamlShapes are the Go types of the config as what the file must hold there.
var yamlShapes = map[reflect.Type]struct{ place, want string }{
	reflect.TypeFor[Config]():   {"at the top level", "a mapping with env_vars and commands"},
	reflect.TypeFor[Commands](): {"under commands", "a mapping of operation names to shell commands"},
	reflect.TypeFor[[]EnvVar](): {"under env_vars", "a list of entries with key and value"},
	reflect.TypeFor[EnvVar]():   {"in an env_vars entry", "a mapping with key and value"},
	reflect.TypeFor[string]():   {"", "a string"},
}

var (
	reUnknownField = regexp.MustCompile(`^line (\d+): field (.*) not found in type (\S+)$`)
	reCannot       = regexp.MustCompile("^line (\\d+): cannot unmarshal (!\\S*)(?: `.*`)? into (\\S+)$")
	reLine         = regexp.MustCompile(`^line (\d+): `)
)

// yamlError rewrites a decoding error of the command config b; errors that are not
// a *yaml.TypeError are returned unchanged.
func yamlError(b []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(b, &doc) // it decoded as far as the type errors: the tree is there
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		msgs = append(msgs, yamlMessage(&doc, m))
	}
	return errors.New(strings.Join(msgs, "; "))
}

func yamlMessage(doc *yaml.Node, m string) string {
	if g := reUnknownField.FindStringSubmatch(m); g != nil {
		shape, known := shapeNamed(g[3])
		msg := fmt.Sprintf("line %s: unknown key %q", g[1], g[2])
		if shape.place != "" {
			msg += " " + shape.place
		}
		if len(known) > 0 {
			msg += " (known: " + strings.Join(known, ", ") + ")"
		}
		return msg
	}
	if g := reCannot.FindStringSubmatch(m); g != nil {
		line, _ := strconv.Atoi(g[1])
		shape, _ := shapeNamed(g[3])
		where := fmt.Sprintf("line %d", line)
		if key := keyAtLine(doc, line); key != "" {
			where += ": " + key
		}
		want := shape.want
		if want == "" {
			want = "another kind of value"
		}
		return fmt.Sprintf("%s: want %s, not %s", where, want, tagName(g[2]))
	}
	// A message of another form would still be in Go's terms: keep only its line.
	if g := reLine.FindStringSubmatch(m); g != nil {
		return "line " + g[1] + ": a value that does not fit the command config there"
	}
	return "a value that does not fit the command config"
}

// shapeNamed returns the shape of the config type Go calls name (as reflect's
// String does) and its keys.
func shapeNamed(name string) (s struct{ place, want string }, keys []string) {
	for t, shape := range yamlShapes {
		if t.String() != name {
			continue
		}
		if t.Kind() == reflect.Struct {
			for i := range t.NumField() {
				if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
					keys = append(keys, tag)
				}
			}
		}
		return shape, keys
	}
	return s, nil
}

// keyAtLine returns the dotted key (list items as key[i]) of the value on line
// whose kind does not fit the config type it decodes into, walking doc alongside
// Config; "" when the value is the whole document or none is found.
func keyAtLine(doc *yaml.Node, line int) string {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return ""
	}
	key, _ := mismatch(doc.Content[0], reflect.TypeFor[Config](), "", line)
	return key
}

func mismatch(n *yaml.Node, t reflect.Type, path string, line int) (string, bool) {
	fits := n.Kind == yaml.ScalarNode
	switch t.Kind() {
	case reflect.Struct:
		fits = n.Kind == yaml.MappingNode
	case reflect.Slice:
		fits = n.Kind == yaml.SequenceNode
	}
	if !fits {
		return path, n.Line == line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fieldType(t, k.Value)
			if !ok {
				continue
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if key, ok := mismatch(v, ft, p, line); ok {
				return key, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if key, ok := mismatch(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), line); ok {
				return key, true
			}
		}
	}
	return "", false
}

// fieldType returns the type of the field of struct t whose YAML key is key.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key {
			return t.Field(i).Type, true
		}
	}
	return nil, false
}

// tagName says what a YAML tag is.
func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true/false"
	case "!!null":
		return "nothing"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	}
	return "a value tagged " + tag
}
