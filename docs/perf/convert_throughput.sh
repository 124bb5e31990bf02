#!/bin/bash
# docs/SCALE.md's throughput table: hyperthumb convert on 20 validation-size photos, each engine.
# Run from the repository root with the venv active; writes /tmp/thr/results.txt.
set -u
mkdir -p /tmp/thr/src
python - <<'PY'
from pathlib import Path
from PIL import Image, ImageOps
paths = sorted((Path.home() / ".cache/hyperthumb/validation").glob("*"))  # python -m app.training data
n = 0
for variant in range(3):
    for p in paths:
        if n < 20:
            im = Image.open(p).convert("RGB")
            im = im.crop((0, 0, 2560, 1600)) if im.width > 2560 else im
            im = ImageOps.mirror(im) if variant == 1 else im.rotate(180) if variant == 2 else im
            im.save(f"/tmp/thr/src/p{n:02d}.jpg", quality=95)
            n += 1
PY
out=/tmp/thr/results.txt; : > $out
for w in 1 2 3; do
  rm -rf /tmp/thr/dst; s=$(date +%s.%N)
  hyperthumb convert /tmp/thr/src /tmp/thr/dst --effort fast --workers $w > /tmp/thr/log_local_$w.txt 2>&1
  e=$(date +%s.%N); echo "local fast workers=$w wall=$(echo "$e-$s"|bc) $(grep converted /tmp/thr/log_local_$w.txt)" >> $out
done
rm -rf /tmp/thr/dst_local; cp -r /tmp/thr/dst /tmp/thr/dst_local
for w in 1 2; do
  rm -rf /tmp/thr/dstr; s=$(date +%s.%N)
  hyperthumb convert /tmp/thr/src /tmp/thr/dstr --effort fast --engine ray --workers $w > /tmp/thr/log_ray_$w.txt 2>&1
  e=$(date +%s.%N); echo "ray fast workers=$w wall=$(echo "$e-$s"|bc) $(grep converted /tmp/thr/log_ray_$w.txt)" >> $out
done
diff -r /tmp/thr/dstr /tmp/thr/dst_local --exclude=.hyperthumb-convert.sqlite3* > /dev/null && echo "ray == local: identical bytes" >> $out || echo "ray != local" >> $out
mkdir -p /tmp/thr/src6 && cp /tmp/thr/src/p0[0-5].jpg /tmp/thr/src6/
for w in 1 2; do
  rm -rf /tmp/thr/dstd; s=$(date +%s.%N)
  hyperthumb convert /tmp/thr/src6 /tmp/thr/dstd --effort default --workers $w > /tmp/thr/log_default_$w.txt 2>&1
  e=$(date +%s.%N); echo "local default workers=$w wall=$(echo "$e-$s"|bc) $(grep converted /tmp/thr/log_default_$w.txt)" >> $out
done
echo done >> $out
