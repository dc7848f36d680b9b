#!/usr/bin/env bash
# Train every model of the small-scale comparison (docs/results/small-scale.md) on the built-in dataset with the
# same budget: the `builtin` preset of 9956cf6 (L_j on where the model has it, as the preset had until issue 23)
# up to MAX_RES (16: 80k images; 32: 104k). JOBS runs go at a time, one CPU thread each. SET=models (default) is the papers' models and ablations; SET=recipes the two training recipes and the
# authors' recipe with its biggest elements switched off one at a time ("The two recipes"); SET=demo the candidates
# of the search behind the `builtin` preset (docs/results/demo-search.md; use MAX_RES=32).
#   [SET=models|recipes|demo] [MAX_RES=16] [JOBS=2] [OUT=runs/small-scale] [ONLY="automod pioneer"] scripts/small_scale.sh [SEED...]
# (default seed 0; the runs land in $OUT/<variant>-s<seed>)
# Running it again resumes unfinished runs and skips finished ones.
set -euo pipefail
OUT=${OUT:-runs/small-scale}
JOBS=${JOBS:-2}
MAX_RES=${MAX_RES:-16}
AUTOMOD=${AUTOMOD:-.venv/bin/automod}
SEEDS=("${@:-0}")
schedule() {  # images and batch size per resolution (4, 8, 16, 32), then the EMA's half-life in images, then the
  # precision (fp32 unless a 10th argument says otherwise: every run before demo-cotrain-bf16 computed in fp32, the
  # preset's "auto" since); and the AdaIN maps learning in the decoder step only, as in every run measured before
  # demo-cotrain (the preset's since; the cotrain candidates set it back on after this)
  echo "--set phase_images.4=$1 --set phase_images.8=$2 --set phase_images.16=$3 --set phase_images.32=$4" \
    "--set batch_size.4=$5 --set batch_size.8=$6 --set batch_size.16=$7 --set batch_size.32=$8" \
    "--set ema_half_life=$9 --set adain_cotrain=off --set precision=${10:-fp32}"
}
# The budget of every comparison on docs/results/small-scale.md: the `builtin` preset as it was until issue 23's search
# (9956cf6), spelled out so that the comparison stays the same whatever the preset becomes
PRESET_9956=$(schedule 16000 32000 32000 24000 64 64 32 32 10000)
BUDGET=$PRESET_9956
# name | flags: NeurIPS Table 1 ablations and Table 2a baselines (LIA: its stage 1 GAN; stage 2 needs VGG16 weights)
VARIANTS=(
  "automod|--layer-loss"
  "pioneer|--model pioneer"
  "vae-adain|--model vae --decoder adain"
  "wae-adain|--model wae --decoder adain"
  "automod-no-lj|--no-layer-loss"
  "automod-l1|--reconstruction l1 --layer-loss"
  "vae-classic|--model vae --decoder classic"
  "wae-classic|--model wae --decoder classic"
  "lia|--model lia --stage 1"
)
if [ "${SET:-models}" = recipes ]; then
  # the authors' loss units and objective replaced by the paper's (KL x1, lambda_x 2, cosine latent, Eq. 1's hinge)
  PAPER_UNITS="--set kl_scale=1 --set lambda_x=2 --set match_x=1 --set latent_distance=cosine --set lambda_z=1.953125 --set encoder_objective=hinge --set kl_margin=0.5"
  VARIANTS=(
    "recipe-paper|--recipe paper --layer-loss"
    "recipe-authors|--recipe authors --layer-loss"
    "authors-no-pool|--recipe authors --layer-loss --set fake_pool=0"
    "authors-paper-units|--recipe authors --layer-loss $PAPER_UNITS"
    "authors-paper-mixing|--recipe authors --layer-loss --set mixed_fraction_decoder=0.25 --set mix_start_level=0 --set split_all_blocks=true --set layer_target=detached"
    "authors-paper-ema|--recipe authors --layer-loss --set ema_decay=null"
  )
fi
if [ "${SET:-models}" = demo ]; then
  # every candidate spelled out in full, so that the list stays the search's whatever the preset becomes
  BUDGET=""
  SHIFTED=$(schedule 8000 16000 24000 30000 64 64 32 32 2000)
  VARIANTS=(
    "demo-preset|--recipe paper $PRESET_9956 --layer-loss"
    "demo-shifted|--recipe paper $SHIFTED --layer-loss"
    "demo-shifted-no-lj|--recipe paper $SHIFTED --no-layer-loss"
    # the second round (2026-12-07, session 10): from demo-shifted-no-lj, twice the learning rate; or half the
    # batch at 16² and 32² (twice the steps; 0.81x and 0.89x the images/s, so 26k images at 32² to fit 10 minutes)
    "demo-lr2|--recipe paper $SHIFTED --no-layer-loss --set lr.4=2e-3 --set lr.8=2e-3 --set lr.16=2e-3 --set lr.32=2e-3"
    "demo-b16|--recipe paper $(schedule 8000 16000 24000 26000 64 64 16 16 2000) --no-layer-loss"
    # the third: from demo-shifted-no-lj, the papers' 10k-image EMA half-life (the old preset's, whose samples
    # scored better at 32²); or a quarter of each phase fading in instead of half (more images at full strength)
    "demo-ema10k|--recipe paper $(schedule 8000 16000 24000 30000 64 64 32 32 10000) --no-layer-loss"
    "demo-fade25|--recipe paper $SHIFTED --no-layer-loss --set fade_fraction=0.25"
    # the fourth: from demo-fade25, a smaller latent (64 or 32 dimensions against 128): fewer directions of the
    # prior for the encoder to fill, so that random codes decode to pictures like the data
    "demo-z64|--recipe paper $SHIFTED --no-layer-loss --set fade_fraction=0.25 --set model.latent_dim=64"
    "demo-z32|--recipe paper $SHIFTED --no-layer-loss --set fade_fraction=0.25 --set model.latent_dim=32"
    # the third round (2026-12-07, session 11): from demo-shifted-no-lj, a five times stronger latent cycle (λ_Z 10
    # against 1.95: 1 − cos(z, φ(θ(z))) ended at 0.90, so the cycle had barely started); or the decoder's AdaIN maps
    # learning from the encoder step's reconstruction term too (the authors' --phi_ada_cotrain)
    "demo-lz10|--recipe paper $SHIFTED --no-layer-loss --set lambda_z=10"
    "demo-cotrain|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on"
    # the fourth: demo-cotrain with twice the learning rate (demo-lr2 mixed best of the second round)
    "demo-cotrain-lr2|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on --set lr.4=2e-3 --set lr.8=2e-3 --set lr.16=2e-3 --set lr.32=2e-3"
    # the fifth: demo-cotrain with only the encoder at twice the learning rate (is demo-cotrain-lr2's better mixing the
    # encoder's, and its worse samples the decoder's?)
    "demo-cotrain-elr2|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on --set encoder_lr_scale=2"
    # the sixth: demo-cotrain-lr2 with the papers' 10k-image EMA half-life (a longer average of a faster decoder, for
    # its samples)
    "demo-cotrain-lr2-ema10k|--recipe paper $(schedule 8000 16000 24000 30000 64 64 32 32 10000) --no-layer-loss --set adain_cotrain=on --set lr.4=2e-3 --set lr.8=2e-3 --set lr.16=2e-3 --set lr.32=2e-3"
    # the fourth round (session 12): demo-cotrain with a smaller KL margin (the encoder holds the generated images'
    # KL at KL(real) + M all along: a smaller M lets the decoder bring their codes nearer the data's)
    "demo-cotrain-m02|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on --set kl_margin=0.2"
    "demo-cotrain-m01|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on --set kl_margin=0.1"
    # the other way (both smaller margins sampled worse): a larger one; and the decoder alone at twice the learning rate
    # (demo-cotrain-lr2's better mixing was not the encoder's)
    "demo-cotrain-m1|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on --set kl_margin=1.0"
    "demo-cotrain-dlr2|--recipe paper $SHIFTED --no-layer-loss --set adain_cotrain=on --set lr.4=2e-3 --set lr.8=2e-3 --set lr.16=2e-3 --set lr.32=2e-3 --set encoder_lr_scale=0.5"
    # bf16 autocast (this CPU has AVX-512 BF16: 1.26× and 1.36× the images per second at 16² and 32²,
    # benchmarks/RESULTS.md): the same images, or the time saved given to 32² (40k images there)
    "demo-cotrain-bf16|--recipe paper $(schedule 8000 16000 24000 30000 64 64 32 32 2000 bf16) --no-layer-loss --set adain_cotrain=on"
    "demo-cotrain-bf16-40k|--recipe paper $(schedule 8000 16000 24000 40000 64 64 32 32 2000 bf16) --no-layer-loss --set adain_cotrain=on"
    # the preset since: demo-cotrain-bf16-40k cut to 36k images at 32², so that its training fits ten minutes with
    # room to spare (40k took 9.9 min on the idle machine)
    "demo-cotrain-bf16-36k|--recipe paper $(schedule 8000 16000 24000 36000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on"
    # the preset without layer noise (the authors' --no_LN; their code also turns it off under flip invariance):
    # random samples decode with noise on every layer, and drawing it is 13-17 % of a CPU iteration; the same
    # images, or 40k at 32² in about the time the noise took
    "demo-noln|--recipe paper $(schedule 8000 16000 24000 36000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --set layer_noise=false"
    "demo-noln-40k|--recipe paper $(schedule 8000 16000 24000 40000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --set layer_noise=false"
    # round 5: the decoder's learning rate the other way (2e-3 mixed better and sampled worse): the decoder (and its
    # AdaIN maps) at 5e-4 with the encoder at 1e-3, and every part at 7e-4
    "demo-dlr05|--recipe paper $(schedule 8000 16000 24000 36000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --set lr.4=5e-4 --set lr.8=5e-4 --set lr.16=5e-4 --set lr.32=5e-4 --set encoder_lr_scale=2"
    "demo-lr07|--recipe paper $(schedule 8000 16000 24000 36000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --set lr.4=7e-4 --set lr.8=7e-4 --set lr.16=7e-4 --set lr.32=7e-4"
    # the reconstruction distance: the held-out codes carry almost no shape kind (a linear probe reads it from φ(x) at
    # 24-27 %, chance 20 %), and a robust distance gives the large residuals at a shape's outline little gradient;
    # L2 (the ablation's "l2") gives them the most
    "demo-l2|--recipe paper $(schedule 8000 16000 24000 36000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --reconstruction l2"
    # an encoder 64 wide at every level (the decoder keeps 64/64/48/32): the held-out codes carry almost no shape
    # kind, so a wider encoder at 16² and 32², where a shape's outline is drawn, may read it
    "demo-enc64|--recipe paper $(schedule 8000 16000 24000 36000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --set model.encoder_channels=[64,64,64,64]"
    # demo-enc64 sized to the ten minutes: with two threads its iteration ran at 0.85-0.93x the preset's at 16² and
    # 0.75-0.85x at 32² (bench.py train --precision bf16), so 28k images at 32² take the time the preset's 36k do
    "demo-enc64-28k|--recipe paper $(schedule 8000 16000 24000 28000 64 64 32 32 2000 auto) --no-layer-loss --set adain_cotrain=on --set model.encoder_channels=[64,64,64,64]"
  )
fi
jobs_file=$(mktemp)
trap 'rm -f "$jobs_file"' EXIT
for seed in "${SEEDS[@]}"; do
  for variant in "${VARIANTS[@]}"; do
    name=${variant%%|*}; flags=${variant#*|}
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    run="$OUT/$name-s$seed"
    if [ -d "$run/checkpoints" ]; then
      echo "$AUTOMOD train --resume $run" >> "$jobs_file"
    else
      echo "$AUTOMOD train --out $run --seed $seed --max-res $MAX_RES $BUDGET $flags" >> "$jobs_file"
    fi
  done
done
mkdir -p "$OUT"
# each job logs to its run's name under $OUT/logs; a failed job fails the script after the others finish
mkdir -p "$OUT/logs"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
< "$jobs_file" xargs -P "$JOBS" -I{} sh -c 'cmd="{}"; log="'"$OUT"'/logs/$(echo "$cmd" | sed -E "s@.*(--out|--resume) [^ ]*/([^ ]*).*@\2@").log"; echo "$cmd"; $cmd > "$log" 2>&1 || { echo "failed: $cmd (see $log)"; exit 1; }'
echo "runs in $OUT"
