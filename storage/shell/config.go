package shell

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxConfigSize bounds a command config file.
const maxConfigSize = 1 << 20

// Config is a command-adapter configuration: environment variables and the shell
// commands that implement each storage operation. The format is the one node
// operators already use; keys beyond the original six are optional.
type Config struct {
	// EnvVars are set for every command.
	EnvVars []EnvVar `yaml:"env_vars"`
	// Commands holds the shell text of each operation.
	Commands Commands `yaml:"commands"`
}

// EnvVar is one environment variable for the commands.
type EnvVar struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// Commands are bash scripts, run as bash -c 'set -o nounset -o errexit -o pipefail;
// <script>'. Inputs come only in environment variables.
type Commands struct {
	// CreateBackup gets BACKUP_NAME (already carrying a random suffix) and prints the
	// backup handle.
	CreateBackup string `yaml:"create_backup"`
	// CreateForWrite gets BACKUP_HANDLE and FILE_NAME, prints the file handle on its
	// first stdout line, then reads the file on stdin. It runs under a guard.
	CreateForWrite string `yaml:"create_for_write"`
	// OpenForRead gets FILE_HANDLE and writes the file to stdout.
	OpenForRead string `yaml:"open_for_read"`
	// SaveMetadataLine gets FILE_NAME, prints the handle, then reads the metadata on
	// stdin; it must refuse to overwrite an existing file. It runs under a guard.
	SaveMetadataLine string `yaml:"save_metadata_line"`
	// ListMetadataFiles prints one metadata file handle per line.
	ListMetadataFiles string `yaml:"list_metadata_files"`
	// BackupMetadataFile (optional) gets FILE_NAME and moves that metadata file out of
	// the metadata folder; used to delete metadata when DeleteMetadata is not set.
	BackupMetadataFile string `yaml:"backup_metadata_file"`
	// ListBackups (optional) prints "handle<TAB>unix-mtime[<TAB>size]" lines.
	ListBackups string `yaml:"list_backups"`
	// ListFiles (optional) gets BACKUP_HANDLE and prints one
	// "handle<TAB>unix-mtime<TAB>size" line per committed file of that folder (never a
	// temporary file or an unfinished upload); it exits 44 when the folder does not
	// exist. Without it, resume cannot list an earlier attempt's files.
	ListFiles string `yaml:"list_files"`
	// DeleteBackup (optional) gets BACKUP_HANDLE and removes that folder.
	DeleteBackup string `yaml:"delete_backup"`
	// DeleteMetadata (optional) gets FILE_HANDLE and FILE_NAME and removes that file.
	DeleteMetadata string `yaml:"delete_metadata"`
	// DeleteFile (optional) gets FILE_HANDLE and FILE_NAME and removes that file of a
	// backup folder (gc of unreferenced files inside referenced folders).
	DeleteFile string `yaml:"delete_file"`
	// AbortStaleUploads (optional) gets OLDER_THAN_SECONDS, removes incomplete uploads
	// older than that and may print how many it removed.
	AbortStaleUploads string `yaml:"abort_stale_uploads"`
}

// LoadConfig reads and validates a YAML command config. Unknown keys are errors, so
// typos do not silently disable an operation.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("load command config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("load command config %s: %w", path, err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("load command config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes and validates a YAML command config.
func ParseConfig(b []byte) (Config, error) {
	if len(b) > maxConfigSize {
		return Config{}, fmt.Errorf("command config larger than %d bytes", maxConfigSize)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("command config is empty")
		}
		return Config{}, fmt.Errorf("parse command config: %w", yamlError(b, err))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// reservedEnv are set by the adapter and may not be overridden by env_vars.
var reservedEnv = map[string]bool{
	"BACKUP_NAME": true, "BACKUP_HANDLE": true, "FILE_NAME": true, "FILE_HANDLE": true,
	"OLDER_THAN_SECONDS": true,
}

// Validate checks that the required commands are present and env_vars are sane.
func (c Config) Validate() error {
	req := map[string]string{
		"create_backup":       c.Commands.CreateBackup,
		"create_for_write":    c.Commands.CreateForWrite,
		"open_for_read":       c.Commands.OpenForRead,
		"save_metadata_line":  c.Commands.SaveMetadataLine,
		"list_metadata_files": c.Commands.ListMetadataFiles,
	}
	for k, v := range req {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("command config: commands.%s is required", k)
		}
	}
	for _, e := range c.EnvVars {
		if e.Key == "" || strings.ContainsAny(e.Key, "=\x00") {
			return fmt.Errorf("command config: bad env_vars key %q", e.Key)
		}
		if strings.HasPrefix(e.Key, "LEDGERVAULT_") || reservedEnv[e.Key] {
			return fmt.Errorf("command config: env_vars key %q is reserved", e.Key)
		}
		if strings.ContainsRune(e.Value, 0) {
			return fmt.Errorf("command config: env_vars %s contains a NUL byte", e.Key)
		}
	}
	return nil
}

//go:embed samples/*.yaml
var samples embed.FS

// Sample returns the sample configuration name (local, aws, gcloud or azure; the files
// in storage/shell/samples) with the values of the environment variables in env set.
// Naming a variable the sample does not have is an error.
func Sample(name string, env map[string]string) (Config, error) {
	b, err := samples.ReadFile("samples/" + name + ".yaml")
	if err != nil {
		return Config{}, fmt.Errorf("shell sample %q: %w", name, err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("shell sample %q: %w", name, err)
	}
	for k, v := range env {
		found := false
		for i := range cfg.EnvVars {
			if cfg.EnvVars[i].Key == k {
				cfg.EnvVars[i].Value, found = v, true
			}
		}
		if !found {
			return Config{}, fmt.Errorf("shell sample %q has no environment variable %s", name, k)
		}
	}
	return cfg, cfg.Validate()
}

// NewSample returns a store of the sample configuration name with the environment
// variables in env set (see Sample), for tests and local experiments.
func NewSample(name string, env map[string]string) (*Store, error) {
	cfg, err := Sample(name, env)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
