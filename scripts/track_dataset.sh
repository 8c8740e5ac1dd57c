#!/usr/bin/env bash
# Version a dataset with DVC:  scripts/track_dataset.sh NAME SOURCE_FOLDER
#
# The files are copied to data/raw/NAME and added to DVC (its cache, never git); the pointer goes to datasets/NAME.dvc, which is committed.
# `dvc push` then sends the files to the default remote (.dvc/config), and anywhere else
# `dvc pull datasets/NAME.dvc` brings them back into data/raw/NAME.
#
# The pointers live in datasets/ and the files in data/raw/, not beside them: the `data`
# stage of dvc.yaml depends on datasets/, so a pointer change re-runs it, while a fresh
# clone without the files still runs `dvc repro` (DVC refuses to run a stage whose
# dependency holds tracked data it does not have).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 NAME SOURCE_FOLDER" >&2; exit 2; }
name="$1"
source="$2"
[ -d "$source" ] || { echo "$0: $source is not a folder" >&2; exit 2; }
case "$name" in */*|.*|"") echo "$0: bad dataset name '$name'" >&2; exit 2 ;; esac

target="data/raw/$name"
mkdir -p data/raw datasets
rm -rf "$target"
cp -a --reflink=auto "$source" "$target"
chmod -R u+w "$target"
dvc add -q "$target"  # updates datasets/NAME.dvc in place when it already tracks it
if [ -f "$target.dvc" ]; then
  sed "s#^  path: $name\$#  path: ../$target#" "$target.dvc" > "datasets/$name.dvc"
  rm "$target.dvc"
fi
grep -q "path: ../$target\$" "datasets/$name.dvc" || {
  echo "$0: unexpected layout of $target.dvc" >&2; exit 1; }
echo "datasets/$name.dvc written: commit it; \`dvc push\` stores the files in the remote"
