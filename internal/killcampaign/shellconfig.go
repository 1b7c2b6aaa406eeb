package killcampaign

import (
	"fmt"
	"os"
	"path/filepath"
)

// shellConfig is a command configuration over a local directory (the layout of
// storage/shell/samples/local.yaml) whose uploads and reads are multi-process
// pipelines: data goes through gzip -1 | gzip -d | cat into a hidden temp file, which
// is linked to its final name (create-only) only if every stage of the pipeline
// succeeded. A killed pipeline must never see a clean EOF and commit a truncated file;
// that is what the campaign checks.
const shellConfig = `# Written by the kill campaign (internal/killcampaign).
env_vars:
  - key: "ROOT"
    value: %q
commands:
  create_backup: |
    mkdir -p -- "$ROOT"
    mkdir -- "$ROOT/$BACKUP_NAME"
    echo "$BACKUP_NAME"
  create_for_write: |
    FILE_HANDLE="$BACKUP_HANDLE/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    DIR="$ROOT/$BACKUP_HANDLE"
    TMP="$(mktemp -- "$DIR/.tmp-$FILE_NAME-XXXXXXXX")"
    gzip -1 | gzip -d | cat > "$TMP"
    ST=("${PIPESTATUS[@]}")
    if [ "${ST[0]}" != 0 ] || [ "${ST[1]}" != 0 ] || [ "${ST[2]}" != 0 ]; then rm -f -- "$TMP"; exit 1; fi
    sync -- "$TMP"
    if ln -T -- "$TMP" "$ROOT/$FILE_HANDLE"; then
      rm -f -- "$TMP"
    else
      rm -f -- "$TMP"
      if [ -e "$ROOT/$FILE_HANDLE" ]; then exit 17; fi
      exit 1
    fi
  open_for_read: |
    F="$ROOT/$FILE_HANDLE"
    if [ ! -f "$F" ]; then echo "not found: $FILE_HANDLE" >&2; exit 44; fi
    gzip -1 -c < "$F" | gzip -d | cat
    ST=("${PIPESTATUS[@]}")
    if [ "${ST[0]}" != 0 ] || [ "${ST[1]}" != 0 ] || [ "${ST[2]}" != 0 ]; then exit 1; fi
  save_metadata_line: |
    FILE_HANDLE="metadata/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    mkdir -p -- "$ROOT/metadata"
    TMP="$(mktemp -- "$ROOT/metadata/.tmp-$FILE_NAME-XXXXXXXX")"
    gzip -1 | gzip -d | cat > "$TMP"
    ST=("${PIPESTATUS[@]}")
    if [ "${ST[0]}" != 0 ] || [ "${ST[1]}" != 0 ] || [ "${ST[2]}" != 0 ]; then rm -f -- "$TMP"; exit 1; fi
    sync -- "$TMP"
    if ln -T -- "$TMP" "$ROOT/$FILE_HANDLE"; then
      rm -f -- "$TMP"
    else
      rm -f -- "$TMP"
      if [ -e "$ROOT/$FILE_HANDLE" ]; then exit 17; fi
      exit 1
    fi
  list_metadata_files: |
    mkdir -p -- "$ROOT/metadata"
    cd -- "$ROOT/metadata"
    shopt -s nullglob
    for f in *; do
      if [ -f "$f" ]; then printf 'metadata/%%s\n' "$f"; fi
    done
  backup_metadata_file: |
    mkdir -p -- "$ROOT/metadata_backup"
    mv -n -- "$ROOT/metadata/$FILE_NAME" "$ROOT/metadata_backup/$FILE_NAME"
  delete_metadata: |
    F="$ROOT/$FILE_HANDLE"
    if [ ! -f "$F" ]; then echo "not found: $FILE_HANDLE" >&2; exit 44; fi
    rm -f -- "$F"
  list_backups: |
    mkdir -p -- "$ROOT"
    cd -- "$ROOT"
    shopt -s nullglob
    for d in */; do
      d="${d%%/}"
      if [ "$d" = metadata ] || [ "$d" = metadata_backup ]; then continue; fi
      printf '%%s\t%%s\t%%s\n' "$d" "$(stat -c %%Y -- "$d")" "$(du -sb -- "$d" | cut -f1)"
    done
  list_files: |
    # handle<TAB>mtime<TAB>size of each committed file; .tmp-* files are hidden from *
    D="$ROOT/$BACKUP_HANDLE"
    if [ ! -d "$D" ]; then echo "not found: $BACKUP_HANDLE" >&2; exit 44; fi
    cd -- "$D"
    shopt -s nullglob
    for f in *; do
      if [ -f "$f" ]; then
        read -r M S < <(stat -c '%%Y %%s' -- "$f")
        printf '%%s/%%s\t%%s\t%%s\n' "$BACKUP_HANDLE" "$f" "$M" "$S"
      fi
    done
  delete_backup: |
    if [ ! -d "$ROOT/$BACKUP_HANDLE" ]; then echo "not found: $BACKUP_HANDLE" >&2; exit 44; fi
    GONE="$ROOT/.deleting-$BACKUP_HANDLE-$$"
    mv -T -- "$ROOT/$BACKUP_HANDLE" "$GONE"
    rm -rf -- "$GONE"
  abort_stale_uploads: |
    mkdir -p -- "$ROOT"
    read -r S N < <(date '+%%s %%N')
    CUTOFF="@$(( S - OLDER_THAN_SECONDS )).$N"
    find "$ROOT" -mindepth 2 -maxdepth 2 -type f -name '.tmp-*' ! -newermt "$CUTOFF" -print -delete | wc -l
    find "$ROOT" -mindepth 1 -maxdepth 1 -type d -name '.deleting-*' ! -newermt "$CUTOFF" -exec rm -rf -- {} +
`

// WriteShellConfig writes the command configuration of a store rooted at root (the
// local backend's layout, uploads and reads through multi-process pipelines) into
// dir and returns its path, for `--command-config`.
func WriteShellConfig(dir, root string) (string, error) {
	p := filepath.Join(dir, "commands.yaml")
	if err := os.WriteFile(p, fmt.Appendf(nil, shellConfig, root), 0o644); err != nil {
		return "", fmt.Errorf("write shell config: %w", err)
	}
	return p, nil
}
