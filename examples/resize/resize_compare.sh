#!/usr/bin/env bash
# stealpool's image resizer (examples/resize) against its Python original
# (PIL on a multiprocessing.Pool, examples/resize/resize_pil.py), on the same demo
# images, the same output size (500x500) and 1 and 2 workers; prints a table
# of images/s (medians over ROUNDS interleaved rounds) and the ratios.
#
#   examples/resize/resize_compare.sh [ROUNDS]        # default 3 rounds
#
# Installs Pillow with pip if missing, builds the example in release mode,
# and makes sure the demo set exists (examples/resize --generate-only).
# Environment: PYTHON (python3), WORKERS ("1 2"), DIR (the image folder),
# CARGO_TARGET_DIR (as cargo reads it).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
ROUNDS=${1:-3}
WORKERS=${WORKERS:-"1 2"}
DIR=${DIR:-${TMPDIR:-/tmp}/stealpool-resize-demo/images}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if ! "$PYTHON" -c 'import PIL' 2>/dev/null; then
  echo "installing Pillow with pip" >&2
  "$PYTHON" -m pip install --quiet Pillow
fi
cargo build --release --example resize --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/examples/resize
"$BIN" --generate-only "$DIR" >&2

rate() { grep -o '[0-9.]* images/s' | tail -n1 | cut -d' ' -f1; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

declare -A runs
for round in $(seq "$ROUNDS"); do
  for n in $WORKERS; do
    runs[seed,$n]+=" $("$PYTHON" examples/resize/resize_pil.py "$DIR" --processes "$n" --out "$OUT/py" | rate)"
    runs[draft,$n]+=" $("$PYTHON" examples/resize/resize_pil.py "$DIR" --processes "$n" --out "$OUT/py" --draft | rate)"
    runs[rust,$n]+=" $("$BIN" "$DIR" --threads "$n" --out "$OUT/rs" | rate)"
    echo "round $round, $n worker(s): seed ${runs[seed,$n]##* }, draft ${runs[draft,$n]##* }, stealpool ${runs[rust,$n]##* } images/s" >&2
  done
done

printf '\n%s\n' "images/s on $(nproc) CPUs, median of $ROUNDS rounds; $(ls "$DIR" | grep -c '\.jpg$') JPEGs from $DIR -> 500x500"
printf '%-28s' "workers (threads/processes)"; for n in $WORKERS; do printf '%10s' "$n"; done; echo
declare -A med
for sys in seed draft rust; do
  case $sys in seed) label="PIL seed (Pool.map)";; draft) label="PIL + draft (Pool.map)";; rust) label="stealpool resize";; esac
  printf '%-28s' "$label"
  for n in $WORKERS; do
    med[$sys,$n]=$(echo "${runs[$sys,$n]}" | median)
    printf '%10.1f' "${med[$sys,$n]}"
  done
  echo
done
for base in seed draft; do
  printf '%-28s' "stealpool / PIL $base"
  for n in $WORKERS; do awk -v a="${med[rust,$n]}" -v b="${med[$base,$n]}" 'BEGIN {printf "%9.2fx", a / b}'; done
  echo
done
echo "Pillow $("$PYTHON" -c 'import PIL; print(PIL.__version__)'), Python $("$PYTHON" -c 'import platform; print(platform.python_version())')"
