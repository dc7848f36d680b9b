#!/usr/bin/env bash
# Evaluate the runs of scripts/small_scale.sh with the built-in metrics (docs/results/small-scale.md): one table
# row per variant, mean ± std over its seeds where it has two or more runs; and, for the automodulator with and
# without L_j, a picture of mixes beside their ground truth (seed 0).
#   [SET=models|recipes|demo] [OUT=runs/small-scale] [TABLE=$OUT/table] scripts/small_scale_table.sh
# Writes $TABLE.md, $TABLE.csv, $TABLE.json and $OUT/mix-truth-<variant>.png (existing files are replaced).
set -euo pipefail
OUT=${OUT:-runs/small-scale}
TABLE=${TABLE:-$OUT/table}
AUTOMOD=${AUTOMOD:-.venv/bin/automod}
VARIANTS="automod automod-no-lj automod-l1 pioneer vae-adain wae-adain vae-classic wae-classic lia"
if [ "${SET:-models}" = recipes ]; then
  VARIANTS="recipe-paper recipe-authors authors-no-pool authors-paper-units authors-paper-mixing authors-paper-ema"
elif [ "${SET:-models}" = demo ]; then
  VARIANTS="demo-preset demo-shifted demo-shifted-no-lj demo-lr2 demo-b16 demo-ema10k demo-fade25 demo-z64 demo-z32
    demo-lz10 demo-cotrain demo-cotrain-lr2 demo-cotrain-elr2 demo-cotrain-lr2-ema10k demo-cotrain-m02 demo-cotrain-m01
    demo-cotrain-m1 demo-cotrain-dlr2 demo-cotrain-bf16 demo-cotrain-bf16-40k demo-cotrain-bf16-36k demo-noln
    demo-noln-40k demo-dlr05 demo-lr07 demo-l2 demo-enc64 demo-enc64-28k"
fi
singles=() groups=()
for name in $VARIANTS; do
  runs=$(compgen -G "$OUT/$name-s[0-9]*" | sort | paste -sd, - || true)
  [ -z "$runs" ] && continue
  if [[ $runs == *,* ]]; then groups+=(--group "$name=$runs"); else singles+=("$runs"); fi
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
$AUTOMOD eval compare "${singles[@]}" "${groups[@]}" --metrics builtin --out "$TABLE" --force
for name in automod automod-no-lj; do
  if [ -d "$OUT/$name-s0" ]; then
    $AUTOMOD eval mix-truth --model "$OUT/$name-s0" --grid "$OUT/mix-truth-$name.png" --force
  fi
done
