#!/usr/bin/env bash
# Builds what benches/device.sh runs on a lent machine, which reaches no
# registry: release binaries of the compare runner and the ceiling bench,
# for an older engine and for the working tree, side by side.
#
# Usage: benches/device-prepare.sh OLD_REV
#   OLD_REV  the engine to compare against (a commit, e.g. the last one
#            measured on the lent machine).
# Writes target/device/{old,new}/{compare,ceiling} and target/device/revs
# (about 8 MB in all); carry `target/device` to the machine:
#   run: bash benches/device.sh target/device   (carry: ["target/device"])
set -euo pipefail
cd "$(dirname "$0")/.."
old_rev="${1:?usage: benches/device-prepare.sh OLD_REV}"
out=target/device
rm -rf "$out"
mkdir -p "$out/old" "$out/new"

build() { # $1: source tree, $2: target dir, $3: destination
  (cd "$1/benches" && CARGO_TARGET_DIR="$2" cargo bench --no-run \
      --bench compare --bench ceiling --message-format=json 2>/dev/null) |
    python3 -c '
import json, sys, shutil
dest = sys.argv[1]
for line in sys.stdin:
    msg = json.loads(line)
    exe = msg.get("executable")
    name = (msg.get("target") or {}).get("name")
    if exe and name in ("compare", "ceiling"):
        shutil.copy(exe, f"{dest}/{name}")
' "$3"
}

tree="$(mktemp -d)"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
git worktree add --force --detach "$tree" "$old_rev" >/dev/null
build "$tree" "$PWD/target/device-old-build" "$out/old"
build "$PWD" "$PWD/target" "$out/new"
for f in compare ceiling; do
  test -x "$out/old/$f" && test -x "$out/new/$f" || { echo "missing $f" >&2; exit 1; }
  # Without debug info: ~2 MB a binary instead of ~45 (the carry limit is
  # 64 MiB in all).
  strip "$out/old/$f" "$out/new/$f"
done
printf 'old %s\nnew %s (+ working tree changes: %s)\n' \
  "$(git rev-parse --short "$old_rev")" "$(git rev-parse --short HEAD)" \
  "$(git status --porcelain -- src benches | wc -l)" > "$out/revs"
cat "$out/revs"
du -sh "$out"
