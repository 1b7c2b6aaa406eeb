package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// tree is a command tree like ledgervault's: persistent flags on a parent, local
// flags on leaves, one flag name on two commands.
type tree struct {
	root                 *cobra.Command
	storage, restStorage string
	conc                 int
	poll                 time.Duration
	db                   string
	waypoints            []string
	json                 bool
	ran                  string
}

func newTree(env map[string]string) *tree {
	t := &tree{}
	t.root = &cobra.Command{Use: "lv", SilenceUsage: true, SilenceErrors: true}
	backup := &cobra.Command{Use: "backup"}
	backup.PersistentFlags().StringVar(&t.storage, "storage", "", "storage URL")
	backup.PersistentFlags().IntVar(&t.conc, "concurrency", 4, "requests")
	coord := &cobra.Command{Use: "coordinator", RunE: func(*cobra.Command, []string) error { t.ran = "coordinator"; return nil }}
	coord.Flags().DurationVar(&t.poll, "poll-interval", time.Second, "poll")
	oneoff := &cobra.Command{Use: "transaction", RunE: func(*cobra.Command, []string) error { t.ran = "transaction"; return nil }}
	backup.AddCommand(coord, oneoff)
	restore := &cobra.Command{Use: "restore", RunE: func(*cobra.Command, []string) error { t.ran = "restore"; return nil }}
	restore.Flags().StringVar(&t.restStorage, "storage", "", "storage URL")
	restore.Flags().StringVar(&t.db, "db", "", "database")
	restore.Flags().StringArrayVar(&t.waypoints, "trust-waypoint", nil, "waypoints")
	restore.Flags().BoolVar(&t.json, "json", false, "json")
	t.root.AddCommand(backup, restore)
	Install(t.root, Options{LookupEnv: mapEnv(env), Aliases: []Alias{
		{Name: "target-db-dir", Target: "db"},
		{Name: "local-fs-dir", Target: "storage", Map: func(s string) (string, error) { return "file://" + s, nil }},
	}})
	return t
}

func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func (t *tree) run(args ...string) error {
	t.root.SetArgs(args)
	return t.root.Execute()
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lv.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"storage": "LEDGERVAULT_STORAGE", "command-config": "LEDGERVAULT_COMMAND_CONFIG",
		"state-snapshot-interval-epochs": "LEDGERVAULT_STATE_SNAPSHOT_INTERVAL_EPOCHS"} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, want)
		}
	}
}

// TestPrecedence: flag > env > file > default, for a persistent flag of a parent and
// a local flag of a leaf.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "storage: file:///from-file\nbackup:\n  concurrency: 7\n  coordinator:\n    poll-interval: 5s\n")
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		storage string
		conc    int
		poll    time.Duration
	}{
		{"default", nil, nil, "", 4, time.Second},
		{"file", nil, []string{"--config", file}, "file:///from-file", 7, 5 * time.Second},
		{"env over file", map[string]string{"LEDGERVAULT_STORAGE": "file:///from-env", "LEDGERVAULT_POLL_INTERVAL": "9s"},
			[]string{"--config", file}, "file:///from-env", 7, 9 * time.Second},
		{"flag over env", map[string]string{"LEDGERVAULT_STORAGE": "file:///from-env", "LEDGERVAULT_CONCURRENCY": "3"},
			[]string{"--config", file, "--storage", "file:///from-flag", "--poll-interval", "2s"}, "file:///from-flag", 3, 2 * time.Second},
		{"config from env", map[string]string{"LEDGERVAULT_CONFIG": file}, nil, "file:///from-file", 7, 5 * time.Second},
		{"empty env is unset", map[string]string{"LEDGERVAULT_STORAGE": ""}, []string{"--config", file}, "file:///from-file", 7, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTree(c.env)
			if err := tr.run(append([]string{"backup", "coordinator"}, c.args...)...); err != nil {
				t.Fatal(err)
			}
			if tr.storage != c.storage || tr.conc != c.conc || tr.poll != c.poll {
				t.Fatalf("storage %q concurrency %d poll %s; want %q %d %s", tr.storage, tr.conc, tr.poll, c.storage, c.conc, c.poll)
			}
		})
	}
}

// TestSections: a section's value applies to its command and subcommands only, and
// the deepest wins.
func TestSections(t *testing.T) {
	file := writeFile(t, "storage: file:///top\nconcurrency: 2\nbackup:\n  storage: file:///backup\n  transaction:\n    concurrency: 9\nrestore:\n  json: true\n")
	tr := newTree(nil)
	if err := tr.run("backup", "coordinator", "--config", file); err != nil {
		t.Fatal(err)
	}
	if tr.storage != "file:///backup" || tr.conc != 2 {
		t.Fatalf("coordinator: storage %q concurrency %d", tr.storage, tr.conc)
	}
	tr = newTree(nil)
	if err := tr.run("backup", "transaction", "--config", file); err != nil {
		t.Fatal(err)
	}
	if tr.conc != 9 {
		t.Fatalf("transaction: concurrency %d, want 9", tr.conc)
	}
	tr = newTree(nil)
	if err := tr.run("restore", "--config", file); err != nil {
		t.Fatal(err)
	}
	if tr.restStorage != "file:///top" || !tr.json {
		t.Fatalf("restore: storage %q json %v", tr.restStorage, tr.json)
	}
}

func usageError(t *testing.T, err error, want ...string) {
	t.Helper()
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not a UsageError", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	file := writeFile(t, "storag: x\nbackup:\n  coordinator:\n    poll: 1s\n  restore:\n    db: x\nrestore:\n  concurrency: 3\n")
	err := newTree(nil).run("restore", "--config", file)
	usageError(t, err, file+":1: storag: unknown key", file+":4: backup.coordinator.poll: unknown key",
		file+":5: backup.restore: unknown key", file+":8: restore.concurrency: unknown key")
	// Aliases and --config itself are not file keys.
	file = writeFile(t, "target-db-dir: x\nconfig: y\n")
	usageError(t, newTree(nil).run("restore", "--config", file), "target-db-dir: unknown key", "config: unknown key")
}

func TestBadValues(t *testing.T) {
	err := newTree(map[string]string{"LEDGERVAULT_CONCURRENCY": "many"}).run("backup", "coordinator")
	usageError(t, err, `LEDGERVAULT_CONCURRENCY="many"`, "--concurrency")
	file := writeFile(t, "backup:\n  coordinator:\n    poll-interval: soon\n")
	err = newTree(nil).run("backup", "coordinator", "--config", file)
	usageError(t, err, file+":3: backup.coordinator.poll-interval", "--poll-interval")
	// A bad value for a command not run is not read.
	if err := newTree(nil).run("restore", "--config", file); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"- a\n- b\n", "storage:\n", "storage: [x]\n", "storage: a\nstorage: b\n", "backup: &a {x: 1}\nrestore: *a\n", "storage: {}\nstorage: 1\n"} {
		if _, err := Parse("f.yml", []byte(text)); err == nil {
			if f, _ := Parse("f.yml", []byte(text)); f.Check(newTree(nil).root) == nil {
				t.Errorf("%q accepted", text)
			}
		}
	}
	missing := filepath.Join(t.TempDir(), "none.yml")
	usageError(t, newTree(nil).run("restore", "--config", missing), "--config", missing)
	usageError(t, newTree(map[string]string{"LEDGERVAULT_CONFIG": missing}).run("restore"), "LEDGERVAULT_CONFIG", missing)
}

func TestExpand(t *testing.T) {
	file := writeFile(t, "restore:\n  storage: s3://${BUCKET}/x?endpoint=${EP}\n  db: ${UNSET}\n  trust-waypoint: [\"${WP}\", \"1:ab\"]\n")
	env := map[string]string{"BUCKET": "b", "EP": "http://127.0.0.1:1", "WP": "0:cd", "LEDGERVAULT_DB": "/d"}
	tr := newTree(env)
	if err := tr.run("restore", "--config", file); err != nil {
		t.Fatal(err)
	}
	if tr.restStorage != "s3://b/x?endpoint=http://127.0.0.1:1" || tr.db != "/d" || strings.Join(tr.waypoints, ",") != "0:cd,1:ab" {
		t.Fatalf("storage %q db %q waypoints %q", tr.restStorage, tr.db, tr.waypoints)
	}
	delete(env, "LEDGERVAULT_DB")
	usageError(t, newTree(env).run("restore", "--config", file), file+":3: restore.db", "UNSET is not set")
	file = writeFile(t, "restore:\n  db: ${not a name}\n")
	usageError(t, newTree(nil).run("restore", "--config", file), "${not a name}")
	if s, err := expand("a$b${X}$", mapEnv(map[string]string{"X": "y"})); err != nil || s != "a$by$" {
		t.Fatalf("expand: %q %v", s, err)
	}
}

func TestLists(t *testing.T) {
	file := writeFile(t, "restore:\n  trust-waypoint:\n    - 0:aa\n    - 5:bb\n")
	tr := newTree(nil)
	if err := tr.run("restore", "--config", file); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tr.waypoints, ",") != "0:aa,5:bb" {
		t.Fatalf("waypoints %q", tr.waypoints)
	}
	// The command line replaces the file's list.
	tr = newTree(nil)
	if err := tr.run("restore", "--config", file, "--trust-waypoint", "9:cc"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tr.waypoints, ",") != "9:cc" {
		t.Fatalf("waypoints %q", tr.waypoints)
	}
	usageError(t, newTree(nil).run("restore", "--config", writeFile(t, "restore:\n  db: [a, b]\n")), "restore.db", "not a list")
}

func TestAliases(t *testing.T) {
	tr := newTree(nil)
	if err := tr.run("restore", "--target-db-dir", "/x", "--local-fs-dir", "/b"); err != nil {
		t.Fatal(err)
	}
	if tr.db != "/x" || tr.restStorage != "file:///b" {
		t.Fatalf("db %q storage %q", tr.db, tr.restStorage)
	}
	tr = newTree(nil)
	if err := tr.run("backup", "coordinator", "--local-fs-dir", "/b"); err != nil {
		t.Fatal(err)
	}
	if tr.storage != "file:///b" {
		t.Fatalf("persistent alias: storage %q", tr.storage)
	}
	// An alias wins over the environment like its target would.
	tr = newTree(map[string]string{"LEDGERVAULT_DB": "/env"})
	if err := tr.run("restore", "--target-db-dir", "/x"); err != nil {
		t.Fatal(err)
	}
	if tr.db != "/x" {
		t.Fatalf("db %q", tr.db)
	}
	for _, args := range [][]string{{"--db", "/a", "--target-db-dir", "/b"}, {"--target-db-dir", "/b", "--db", "/a"}} {
		if err := newTree(nil).run(append([]string{"restore"}, args...)...); err == nil || !strings.Contains(err.Error(), "say different things") {
			t.Fatalf("%q: %v", args, err)
		}
	}
	// The same meaning twice is fine.
	if err := newTree(nil).run("restore", "--db", "/a", "--target-db-dir", "/a"); err != nil {
		t.Fatal(err)
	}
	// Aliases are hidden and named in their target's usage.
	tr = newTree(nil)
	restore, _, _ := tr.root.Find([]string{"restore"})
	if fl := restore.Flags().Lookup("target-db-dir"); fl == nil || !fl.Hidden {
		t.Fatal("alias missing or shown")
	}
	if u := restore.Flags().Lookup("db").Usage; !strings.Contains(u, "alias --target-db-dir") || !strings.Contains(u, "env LEDGERVAULT_DB") {
		t.Fatalf("usage %q", u)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	xdg := filepath.Join(dir, "xdg")
	env := map[string]string{"XDG_CONFIG_HOME": xdg}
	tr := newTree(env)
	if err := tr.run("restore"); err != nil || tr.restStorage != "" {
		t.Fatalf("no file: %v %q", err, tr.restStorage)
	}
	if err := os.MkdirAll(filepath.Join(xdg, "ledgervault"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xdg, "ledgervault", FileName), []byte("storage: file:///xdg\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr = newTree(env)
	if err := tr.run("restore"); err != nil || tr.restStorage != "file:///xdg" {
		t.Fatalf("xdg file: %v %q", err, tr.restStorage)
	}
	if err := os.WriteFile(FileName, []byte("storage: file:///cwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr = newTree(env)
	if err := tr.run("restore"); err != nil || tr.restStorage != "file:///cwd" {
		t.Fatalf("cwd file first: %v %q", err, tr.restStorage)
	}
	for _, args := range [][]string{{"--config", ""}, {"--config="}} {
		tr = newTree(env)
		if err := tr.run(append([]string{"restore"}, args...)...); err != nil || tr.restStorage != "" {
			t.Fatalf("%q: %v %q", args, err, tr.restStorage)
		}
	}
	env["LEDGERVAULT_CONFIG"] = ""
	tr = newTree(env)
	if err := tr.run("restore"); err != nil || tr.restStorage != "" {
		t.Fatalf("LEDGERVAULT_CONFIG empty: %v %q", err, tr.restStorage)
	}
	want := []string{"./" + FileName, filepath.Join("/h", ".config", "ledgervault", FileName), "/etc/ledgervault/" + FileName}
	if got := SearchPath(mapEnv(map[string]string{"HOME": "/h"})); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("SearchPath = %q", got)
	}
}

func TestLoadLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yml")
	if err := os.WriteFile(p, []byte("# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load of a big file: %v", err)
	}
}

// FuzzParse: no input panics Parse, Check or Apply.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"storage: file:///var/lib/ledgervault/backups\nlog-level: info\nbackup:\n  concurrency: 8\n  coordinator:\n    poll-interval: 5s\nrestore:\n  trust-waypoint: [\"0:ab\"]\n",
		"", "~\n", "a: [1, {b: 2}]\n", "x: &a 1\ny: *a\n", "restore: {db: ${HOME}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := Parse("f.yml", b)
		if err != nil {
			return
		}
		tr := newTree(nil)
		if fl.Check(tr.root) != nil {
			return
		}
		restore, _, _ := tr.root.Find([]string{"restore"})
		_ = Apply(restore, fl, mapEnv(nil))
	})
}
