#!/usr/bin/env bash
# Issue 8's GPU measurements as one prepared run for a lent GPU machine, to be recorded in benchmarks/RESULTS.md:
#
#   device tool:  run  command="bash benchmarks/device_check.sh"  timeout_s=600
#
# The machine's own python3 already has torch, h5py, typer, rich, safetensors and scipy (the device tool's package
# list), so nothing is installed: the repository goes on PYTHONPATH. Sections run most important first, each
# under its own time limit (together 550 s, inside one call's 600 s, leaving a lease of 15 minutes room for the
# machine's start); a section that runs out keeps the records it wrote. JSON lines go to $OUT/<section>.jsonl,
# errors to $OUT/<section>.err, the GPU's description to $OUT/gpu.txt, and the tables (benchmarks/table.py) to
# $OUT/tables.md and, last, to the terminal.
#
# ONLY="train syncs" runs just the named sections (a second call after one ran out of time). SMOKE=1 runs every
# section on the CPU at toy sizes in under a minute, with no time limits, to check the script itself
# (tests/test_benchmarks.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"

if [ "${SMOKE:-0}" = 1 ]; then
    DEV=(--device cpu) PRESET=builtin RES=(8) PROFILE=(--top-ops 5) STEPS=(--steps 1 --warmup 0) TOP=8 BATCHES=(2)
    DATA=(--resolutions 4 8 --images 64 --workers 0) SYNCS=(--device meta --steps 1 --kinds pioneer)
    MATMUL=(--steps 1 --warmup 0 --size 256) VARIANTS=(loop naive) COMPILE=0
    PROJECT=(--batches 2 --steps 1 --warmup 0 --distance alex)
else
    # the paper's network (ffhq preset: 512 channels to 64², batch 32 at 64² and 128², 16 at 256²)
    DEV=(--device cuda) PRESET=ffhq RES=(64 128 256) PROFILE=(--kernel-time --top-ops 12) STEPS=(--steps 10 --warmup 3) TOP=256
    BATCHES=(1 64) DATA=(--resolutions 4 8 16 32 64 128 256 --images 2048 --workers 0 4 8) SYNCS=(--device cuda)
    MATMUL=(--steps 10 --warmup 3) VARIANTS=(loop naive separate-passes plain-adam plain-ema fused-adam) COMPILE=1
    PROJECT=(--batches 1 --steps 5 --warmup 3 --distance vgg alex)
fi

section() {  # NAME SECONDS ARGS...: one bench.py call under its own time limit (skipped when ONLY leaves it out)
    local name=$1 limit=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        return 0
    fi
    local start=$SECONDS
    # the limits budget a GPU lease; the smoke run checks the script and must not fail on a slow or busy machine
    [ "${SMOKE:-0}" = 1 ] && limit=0
    timeout "$limit" "$PY" benchmarks/bench.py "$@" >>"$OUT/$name.jsonl" 2>>"$OUT/$name.err"
    local status=$?
    echo "$name: exit $status after $((SECONDS - start)) s, $(wc -l <"$OUT/$name.jsonl") record(s)$([ $status = 124 ] && echo ', stopped at its time limit')"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c 'import platform, torch; print("torch", torch.__version__, "python", platform.python_version(), "cpus", __import__("os").cpu_count())'
} >"$OUT/gpu.txt"

# the ceiling MFU is read against, as this card reaches it with a plain matrix product
section matmul 20 matmul "${DEV[@]}" --precision bf16 fp32 "${MATMUL[@]}"
# images/s, GFLOP/image, MFU, share of time in kernels, the kernels taking it, peak memory at the paper's batch sizes
section train 180 train "${DEV[@]}" --preset "$PRESET" --resolutions "${RES[@]}" --precision fp32 bf16 "${STEPS[@]}" "${PROFILE[@]}"
# host-device synchronisations in every model's iterations (torch.cuda.set_sync_debug_mode)
section syncs 75 syncs "${SYNCS[@]}"
# encoder/decoder latency at batch 1 and 64 (the encoder side of App. G's race)
section encode 40 encode "${DEV[@]}" --preset "$PRESET" --batches "${BATCHES[@]}" --precision fp32 bf16 "${STEPS[@]}"
# one projection step against one encoder pass at 256² (App. G's race without a trained model or LPIPS weights)
section project-cost 40 project-cost "${DEV[@]}" --preset "$PRESET" "${PROJECT[@]}"
# what each of the loop's optimisations buys at the top resolution, on the GPU
section variants 50 train "${DEV[@]}" --preset "$PRESET" --resolutions "$TOP" --precision bf16 --variants "${VARIANTS[@]}" "${STEPS[@]}"
# cuDNN's per-shape algorithm search (off in training today), against the train section's 256² bf16 line
section cudnn 30 train "${DEV[@]}" --preset "$PRESET" --resolutions "$TOP" --precision bf16 --cudnn-benchmark "${STEPS[@]}"
# the reader at every resolution (table.py divides it by the training rate above)
section data 45 data "${DATA[@]}"
# torch.compile of the decoder (its first steps compile: the warm-up absorbs them)
if [ "$COMPILE" = 1 ]; then
    section compile 70 train "${DEV[@]}" --preset "$PRESET" --resolutions "$TOP" --precision bf16 --compile "${STEPS[@]}"
fi

"$PY" benchmarks/table.py "$OUT"/*.jsonl >"$OUT/tables.md" 2>/dev/null || echo "no records were written" >"$OUT/tables.md"
cat "$OUT/gpu.txt" "$OUT/tables.md"
