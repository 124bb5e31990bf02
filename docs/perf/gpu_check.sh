#!/usr/bin/env bash
# Issue 19's GPU check, prepared for a session whose task is lent an H100/H200 (the device tool).
#
#   here:   bash docs/perf/gpu_check.sh prepare
#           (wheels the GPU machine's Python 3.12 lacks into .whl/, the validation photos into
#            .gpu-data/; both git-ignored, ~12 MB)
#   there:  device run: command "bash docs/perf/gpu_check.sh run", carry [".whl", ".gpu-data"],
#           timeout_s 540; the JSON comes back under $OUT (files_at)
#
# What it measures, all with the default weights: `hyperthumb bench --device cuda` (network 6K,
# end to end, viewport, the detail layer's stages, encoder; --scaling 1K..8K), `bench
# --quality-check` on CUDA (the float16 path's PSNR cost against float32, real validation photos),
# and docs/perf/gpu_probe.py (eager float16 against torch.compile). Record the figures in
# docs/PERFORMANCE.md "GPU", with the card the reply names.
set -euo pipefail
cd "$(dirname "$0")/../.."
WHEELS="piexif==1.1.3 constriction==0.5.0 mozjpeg-lossless-optimization==1.3.2 defusedxml==0.7.1 pillow-heif==1.9.0 pillow==13.0.0"

case "${1:-}" in
prepare)
    grep -qx '/.gpu-data/' .git/info/exclude 2>/dev/null || echo '/.gpu-data/' >> .git/info/exclude
    mkdir -p .whl .gpu-data/validation
    # shellcheck disable=SC2086
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl $WHEELS
    cp "${HYPERTHUMB_DATA:-$HOME/.cache/hyperthumb}"/validation/* .gpu-data/validation/
    du -sh .whl .gpu-data
    ;;
run)
    : "${OUT:?run this on the device machine (OUT is its results folder)}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    hyperthumb() { python3 -c 'import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
    hyperthumb bench --device cuda --repeat 5 --warmup 2 --scaling 1K,2K,4K,6K,8K --json > "$OUT/bench_cuda.json" \
        2> "$OUT/bench_cuda.log" || tail -20 "$OUT/bench_cuda.log"
    hyperthumb bench --device cuda --quality-check .gpu-data/validation --json > "$OUT/quality_cuda.json" \
        2> "$OUT/quality_cuda.log" || tail -20 "$OUT/quality_cuda.log"
    python3 docs/perf/gpu_probe.py --json > "$OUT/gpu_probe.json" 2> "$OUT/gpu_probe.log" || tail -20 "$OUT/gpu_probe.log"
    ls -l "$OUT"
    ;;
*)
    echo "usage: bash docs/perf/gpu_check.sh prepare|run" >&2
    exit 2
    ;;
esac
