// Package operatorconfig_test runs the ledgervault binary the way an operator
// configures it: flags, LEDGERVAULT_* variables and a ledgervault.yml, their
// precedence (flag > env > file > default), the errors of bad values and keys
// (exit 2), the Aptos flag aliases, and the version the build stamps.
package operatorconfig_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "lv-operatorconfig-test") }

// env is a clean environment: no LEDGERVAULT_* of the caller, HOME and
// XDG_CONFIG_HOME inside the test so that no operator's file is found, plus extra.
func env(t *testing.T, home string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEDGERVAULT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "xdg")}, extra...)...)
}

// with returns environ and extra in a new slice.
func with(environ []string, extra ...string) []string {
	return append(slices.Clone(environ), extra...)
}

// run runs the binary in dir with the environment environ.
func run(t *testing.T, dir string, environ []string, args ...string) testbin.Result {
	t.Helper()
	cmd := exec.Command(testbin.Path, args...)
	cmd.Dir, cmd.Env = dir, environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := testbin.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// stores makes one store per name under dir, each holding one metadata file of
// that name, and returns their file:// URLs.
func stores(t *testing.T, dir string, environ []string, names ...string) map[string]string {
	t.Helper()
	input := filepath.Join(dir, "line")
	if err := os.WriteFile(input, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, n := range names {
		urls[n] = "file://" + filepath.Join(dir, "store-"+n)
		// The name comes from the environment: a required flag given by a variable.
		r := run(t, dir, with(environ, "LEDGERVAULT_NAME="+n), "storage", "put", "--metadata", "--input", input, "--storage", urls[n])
		if r.Code != 0 {
			t.Fatalf("put %s: %d %s", n, r.Code, r.Stderr)
		}
	}
	return urls
}

// TestPrecedence: storage ls lists the metadata of the store the configuration
// chose: the flag's over the variable's over the file's; a command section over
// the top level; nothing without any.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	base := env(t, dir)
	u := stores(t, dir, base, "flag", "env", "file", "section", "searched")
	file := filepath.Join(dir, "lv.yml")
	if err := os.WriteFile(file, []byte("storage: ${FILE_STORE}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := env(t, dir, "FILE_STORE="+u["file"])
	cases := []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"file", withFile, []string{"--config", file}, "file"},
		{"config from env", with(withFile, "LEDGERVAULT_CONFIG="+file), nil, "file"},
		{"env over file", with(withFile, "LEDGERVAULT_STORAGE="+u["env"]), []string{"--config", file}, "env"},
		{"flag over env", with(withFile, "LEDGERVAULT_STORAGE="+u["env"]), []string{"--config", file, "--storage", u["flag"]}, "flag"},
		{"flag over file", withFile, []string{"--storage", u["flag"], "--config", file}, "flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, dir, c.environ, append([]string{"storage", "ls"}, c.args...)...)
			if r.Code != 0 || strings.TrimSpace(r.Stdout) != "metadata/"+c.want {
				t.Fatalf("exit %d, listed %q, want %q: %s", r.Code, r.Stdout, c.want, r.Stderr)
			}
		})
	}
	// Default: no store chosen.
	if r := run(t, dir, base, "storage", "ls"); r.Code == 0 || !strings.Contains(r.Stderr, "--storage") {
		t.Fatalf("no store: exit %d %q", r.Code, r.Stderr)
	}
	// A section of the command (storage → ls) wins over the top level.
	sections := filepath.Join(dir, "sections.yml")
	if err := os.WriteFile(sections, []byte("storage:\n  ls:\n    storage: "+u["section"]+"\nlist:\n  json: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, base, "storage", "ls", "--config", sections); r.Code != 0 || strings.TrimSpace(r.Stdout) != "metadata/section" {
		t.Fatalf("section: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	// The search path: $XDG_CONFIG_HOME/ledgervault/ledgervault.yml, then ./ledgervault.yml first.
	xdg := filepath.Join(dir, "xdg", "ledgervault")
	if err := os.MkdirAll(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xdg, "ledgervault.yml"), []byte("storage: "+u["searched"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, base, "storage", "ls"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "metadata/searched" {
		t.Fatalf("XDG file: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "ledgervault.yml"), []byte("storage: "+u["file"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, base, "storage", "ls"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "metadata/file" {
		t.Fatalf("./ledgervault.yml: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	// --config '' turns the search off.
	if r := run(t, dir, base, "storage", "ls", "--config", ""); r.Code == 0 {
		t.Fatalf("--config '': exit 0 %q", r.Stdout)
	}
}

// TestBadConfigExits2: a bad value from a variable names the variable, from the
// file names the file, line and key; an unknown key is named; all exit 2.
func TestBadConfigExits2(t *testing.T) {
	dir := t.TempDir()
	base := env(t, dir)
	u := stores(t, dir, base, "a")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		environ []string
		args    []string
		want    []string
	}{
		{"env value", env(t, dir, "LEDGERVAULT_BACKUPS=maybe"), []string{"storage", "ls", "--storage", u["a"]},
			[]string{`LEDGERVAULT_BACKUPS="maybe"`, "--backups"}},
		{"file value", base, []string{"storage", "ls", "--storage", u["a"], "--config", write("v.yml", "storage:\n  ls:\n    backups: maybe\n")},
			[]string{"v.yml:3: storage.ls.backups", "--backups"}},
		{"unknown keys", base, []string{"storage", "ls", "--config", write("k.yml", "storag: x\nrestore:\n  target-db: y\n")},
			[]string{"k.yml:1: storag: unknown key", "k.yml:3: restore.target-db: unknown key"}},
		{"unset variable", base, []string{"storage", "ls", "--config", write("e.yml", "storage: ${NOT_SET_ANYWHERE}\n")},
			[]string{"e.yml:1: storage", "NOT_SET_ANYWHERE is not set"}},
		{"missing file", base, []string{"storage", "ls", "--config", filepath.Join(dir, "none.yml")}, []string{"--config", "none.yml"}},
		{"yaml syntax", base, []string{"storage", "ls", "--config", write("s.yml", "storage: [\n")}, []string{"s.yml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, dir, c.environ, c.args...)
			if r.Code != 2 {
				t.Fatalf("exit %d, want 2: %s", r.Code, r.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr %q lacks %q", r.Stderr, w)
				}
			}
		})
	}
}

// TestEnvNamesInHelp: each command's --help names the variable of its flags.
func TestEnvNamesInHelp(t *testing.T) {
	dir := t.TempDir()
	for cmd, names := range map[string][]string{
		"restore":            {"LEDGERVAULT_STORAGE", "LEDGERVAULT_COMMAND_CONFIG", "LEDGERVAULT_DB", "LEDGERVAULT_TRUST_WAYPOINT", "LEDGERVAULT_CONFIG"},
		"backup coordinator": {"LEDGERVAULT_POLL_INTERVAL", "LEDGERVAULT_NODE_MAX_AGE", "LEDGERVAULT_BACKUP_SERVICE_ADDRESS", "LEDGERVAULT_STORAGE"},
		"list":               {"LEDGERVAULT_STORAGE", "LEDGERVAULT_JSON"},
	} {
		r := run(t, dir, env(t, dir), append(strings.Fields(cmd), "--help")...)
		for _, n := range names {
			if r.Code != 0 || !strings.Contains(r.Stdout, "env "+n) {
				t.Errorf("%s --help (exit %d) does not name %s", cmd, r.Code, n)
			}
		}
	}
}

// TestAptosAliases: --local-fs-dir DIR is --storage file://DIR, --command-adapter-config
// is --command-config and --target-db-dir is restore's --db.
func TestAptosAliases(t *testing.T) {
	dir := t.TempDir()
	base := env(t, dir)
	stores(t, dir, base, "x")
	if r := run(t, dir, base, "storage", "ls", "--local-fs-dir", "store-x"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "metadata/x" {
		t.Fatalf("--local-fs-dir (relative): exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := run(t, dir, base, "list", "--local-fs-dir", filepath.Join(dir, "store-x"), "--json"); r.Code != 0 {
		t.Fatalf("list --local-fs-dir: exit %d %s", r.Code, r.Stderr)
	}
	// The alias and its target with different meanings: a usage error naming both.
	r := run(t, dir, base, "restore", "--target-db-dir", "a", "--db", "b", "--target-version", "latest", "--trust-waypoint", "0:00")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--target-db-dir") || !strings.Contains(r.Stderr, "--db") {
		t.Fatalf("--target-db-dir and --db: exit %d %s", r.Code, r.Stderr)
	}
	// --command-adapter-config sets the command config: with --storage it is refused as two stores.
	cfg := filepath.Join(dir, "adapter.yml")
	if err := os.WriteFile(cfg, []byte("env_vars: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, base, "storage", "ls", "--command-adapter-config", cfg, "--local-fs-dir", "store-x")
	if r.Code == 0 || !strings.Contains(r.Stderr, "either --command-config or --storage") {
		t.Fatalf("--command-adapter-config with --local-fs-dir: exit %d %s", r.Code, r.Stderr)
	}
	// Aliases are hidden from help but named in their target's usage.
	r = run(t, dir, base, "restore", "--help")
	if strings.Contains(r.Stdout, "--target-db-dir string") || !strings.Contains(r.Stdout, "alias --target-db-dir") ||
		!strings.Contains(r.Stdout, "alias --local-fs-dir") || !strings.Contains(r.Stdout, "alias --command-adapter-config") {
		t.Fatalf("restore --help:\n%s", r.Stdout)
	}
}

// TestVersion: a build stamped with -ldflags -X prints its version, commit and date
// from `version` and `--version`; an unstamped one says devel/unknown and the Go
// version.
func TestVersion(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, env(t, dir), "version")
	if r.Code != 0 || !strings.Contains(r.Stdout, "go version: "+runtime.Version()) || !strings.Contains(r.Stdout, "commit:") ||
		!strings.Contains(r.Stdout, "built:") {
		t.Fatalf("version: exit %d %q", r.Code, r.Stdout)
	}
	bin := filepath.Join(dir, "ledgervault")
	const pkg = "github.com/ledgervault/ledgervault/internal/buildinfo"
	build := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X "+pkg+".Version=v9.8.7 -X "+pkg+".Commit=0123abcd -X "+pkg+".Date=2026-01-02T03:04:05Z",
		"github.com/ledgervault/ledgervault/cmd/ledgervault")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"v9.8.7", "0123abcd", "2026-01-02T03:04:05Z", runtime.Version()} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: %q lacks %q", args, out, want)
			}
		}
	}
}

// TestDocumentedExample: the example file of docs/configuration.md is accepted by
// the binary's strict check (every key a command or a flag).
func TestDocumentedExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\n# every command")
	if start < 0 {
		t.Fatal("no example in docs/configuration.md")
	}
	example := doc[start+len("```yaml\n"):]
	example = example[:strings.Index(example, "```")]
	dir := t.TempDir()
	p := filepath.Join(dir, "example.yml")
	if err := os.WriteFile(p, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, env(t, dir, "S3_ENDPOINT=http://127.0.0.1:1"), "version", "--config", p); r.Code != 0 {
		t.Fatalf("example rejected: exit %d %s", r.Code, r.Stderr)
	}
	// The same check catches a misspelt key.
	if err := os.WriteFile(p, []byte(strings.Replace(example, "poll-interval", "poll-intervall", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, env(t, dir), "version", "--config", p); r.Code != 2 || !strings.Contains(r.Stderr, "backup.coordinator.poll-intervall: unknown key") {
		t.Fatalf("misspelt key: exit %d %s", r.Code, r.Stderr)
	}
}
