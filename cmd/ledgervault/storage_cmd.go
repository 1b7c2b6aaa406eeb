package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storageurl"
)

func init() { extraCommands = append(extraCommands, newStorageCmd) }

// storageFlags select a store: --command-config FILE or --storage file:///DIR.
type storageFlags struct {
	commandConfig string
	url           string
	// logs, when set, are the command's log flags: withStore makes their logger
	// slog's default before opening the store (list and storage, which log nothing
	// themselves, but the storage clients do).
	logs *cli.LogFlags
}

func (f *storageFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.commandConfig, "command-config", "", "YAML command-adapter config (shell-command storage)")
	cmd.PersistentFlags().StringVar(&f.url, "storage", "", "storage URL (file:///DIR, s3://, gs://, azblob://)")
}

// open opens the existing store the flags name, for readers and maintenance (list,
// verify, restore, audit, gc, compact, storage get and ls): it creates nothing, and
// a store that does not exist is storage.ErrStoreNotFound (exit status 10). A
// command config cannot tell; its commands decide.
func (f *storageFlags) open(ctx context.Context) (storage.Store, error) {
	return f.openStore(ctx, false)
}

// openCreating opens the store the flags name for a writer (backups, storage put),
// creating a local store that does not exist yet.
func (f *storageFlags) openCreating(ctx context.Context) (storage.Store, error) {
	return f.openStore(ctx, true)
}

func (f *storageFlags) openStore(ctx context.Context, create bool) (storage.Store, error) {
	switch {
	case f.commandConfig != "" && f.url != "":
		return nil, cli.Usagef("use either --command-config or --storage, not both")
	case f.commandConfig != "":
		st, err := shell.Load(f.commandConfig)
		return cli.OpenedStore("command-config", st, err)
	case f.url != "" && create:
		st, err := storageurl.Open(ctx, f.url)
		return cli.OpenedStore("storage", st, err)
	case f.url != "":
		st, err := storageurl.OpenExisting(ctx, f.url)
		return cli.OpenedStore("storage", st, err)
	}
	return nil, cli.Usagef("choose a store with --command-config FILE or --storage URL")
}

func newStorageCmd() *cobra.Command {
	sf := storageFlags{logs: new(cli.LogFlags)}
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Operator and debugging access to backup storage (put, get, ls)",
	}
	sf.register(cmd)
	sf.logs.Register(cmd)
	cmd.AddCommand(newStoragePutCmd(&sf), newStorageGetCmd(&sf), newStorageLsCmd(&sf))
	return cmd
}

func newStoragePutCmd(sf *storageFlags) *cobra.Command {
	var backup, newBackup, name, input string
	var metadata bool
	cmd := &cobra.Command{
		Use:   "put --name NAME (--backup HANDLE | --new-backup NAME | --metadata) [--input FILE]",
		Short: "Write stdin (or --input) to a file in storage; it becomes visible only if all of it arrived",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStoreMode(cmd, sf, true, func(ctx context.Context, st storage.Store) error {
				var in io.Reader = cmd.InOrStdin()
				if in == os.Stdin && (input == "" || input == "-") {
					// A pollable stdin lets a signal interrupt a read that is waiting for data.
					if err := syscall.SetNonblock(0, true); err == nil {
						defer syscall.SetNonblock(0, false)
						f := os.NewFile(0, "/dev/stdin")
						stopDeadline := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
						defer stopDeadline()
						in = f
					}
				}
				if input != "" && input != "-" {
					f, err := os.Open(input)
					if err != nil {
						return err
					}
					defer f.Close()
					in = f
				}
				h, err := storagePut(ctx, st, in, backup, newBackup, name, metadata)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&backup, "backup", "", "existing backup folder handle")
	cmd.Flags().StringVar(&newBackup, "new-backup", "", "create a new backup folder with this name prefix")
	cmd.Flags().StringVar(&name, "name", "", "file name inside the folder (or metadata name)")
	cmd.Flags().BoolVar(&metadata, "metadata", false, "save a metadata file (create-only)")
	cmd.Flags().StringVar(&input, "input", "-", "file to read instead of stdin")
	cmd.MarkFlagRequired("name")
	return cmd
}

// storagePut writes in to storage; the file is committed only after in reached EOF.
func storagePut(ctx context.Context, st storage.Store, in io.Reader, backup, newBackup, name string, metadata bool) (storage.FileHandle, error) {
	if metadata {
		data, err := io.ReadAll(io.LimitReader(in, 64<<20+1))
		if err != nil {
			return "", fmt.Errorf("read metadata: %w", err)
		}
		if len(data) > 64<<20 {
			return "", errors.New("metadata larger than 64 MiB")
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		return st.SaveMetadata(ctx, name, data)
	}
	b := storage.BackupHandle(backup)
	switch {
	case backup != "" && newBackup != "":
		return "", cli.Usagef("use either --backup or --new-backup")
	case newBackup != "":
		var err error
		if b, err = st.CreateBackup(ctx, newBackup); err != nil {
			return "", err
		}
	case backup == "":
		return "", cli.Usagef("one of --backup, --new-backup or --metadata is required")
	}
	w, err := st.Create(ctx, b, name)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	if _, err := io.CopyBuffer(w, ctxReader{ctx, in}, make([]byte, 1<<20)); err != nil {
		return "", fmt.Errorf("write %s: %w", w.Handle(), err)
	}
	if err := w.Commit(); err != nil {
		return "", err
	}
	return w.Handle(), nil
}

// ctxReader stops reading input once ctx is done, so a signal aborts the copy even
// while the input is idle between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if cerr := c.ctx.Err(); cerr != nil && err == nil {
		return n, cerr
	}
	return n, err
}

func newStorageGetCmd(sf *storageFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get HANDLE",
		Short: "Write a stored file to stdout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, sf, func(ctx context.Context, st storage.Store) error {
				r, err := st.Open(ctx, storage.FileHandle(args[0]))
				if err != nil {
					return err
				}
				defer r.Close()
				if _, err := io.Copy(cmd.OutOrStdout(), r); err != nil {
					return fmt.Errorf("read %s: %w", args[0], err)
				}
				return r.Close()
			})
		},
	}
}

func newStorageLsCmd(sf *storageFlags) *cobra.Command {
	var backups bool
	cmd := &cobra.Command{
		Use:   "ls [--backups]",
		Short: "List metadata files, or backup folders with their age and size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, sf, func(ctx context.Context, st storage.Store) error {
				out := cmd.OutOrStdout()
				if backups {
					infos, err := st.ListBackups(ctx)
					if err != nil {
						return err
					}
					for _, in := range infos {
						fmt.Fprintf(out, "%s\t%s\t%d\n", in.Handle, in.ModTime.UTC().Format("2006-01-02T15:04:05Z"), in.Size)
					}
					return nil
				}
				hs, err := st.ListMetadata(ctx)
				if err != nil {
					return err
				}
				for _, h := range hs {
					fmt.Fprintln(out, h)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&backups, "backups", false, "list backup folders instead of metadata files")
	return cmd
}

// withStore opens the existing store sf names under the signal context of a one-off
// command and runs fn with it; the store is closed afterwards, and an error after a
// signal becomes that signal's exit status.
func withStore(cmd *cobra.Command, sf *storageFlags, fn func(ctx context.Context, st storage.Store) error) error {
	return withStoreMode(cmd, sf, false, fn)
}

// withStoreMode is withStore for a reader (create false) or a writer, which creates
// a local store that does not exist.
func withStoreMode(cmd *cobra.Command, sf *storageFlags, create bool, fn func(ctx context.Context, st storage.Store) error) error {
	if sf.logs != nil {
		if _, err := sf.logs.Logger(); err != nil {
			return err
		}
	}
	ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
	defer stop()
	st, err := sf.openStore(ctx, create)
	if err != nil {
		return err
	}
	defer st.Close()
	return cli.Interrupted(fn(ctx, st), sig())
}
