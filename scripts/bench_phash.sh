#!/usr/bin/env bash
# Perceptual hashing, dealer-free-sis vs Python imagehash, on the same files in the same run.
#
# Sets: the bundled PNGs ("png"), and 20 PNGs + 5 JPEGs ("mix", a fifth JPEG), built as symlink
# folders under target/bench-sets. Python side: imagehash 4.3.2 on Pillow 13.0.0 in a venv at
# .venv-bench (created on first use from PyPI). Both sides run pinned to one core (taskset -c 0),
# then dealer-free-sis once more on every core. Prints every JSON record, then a ratio table.
#
#   scripts/bench_phash.sh            # full run (a few minutes)
#   SECONDS_PER_OP=1 scripts/bench_phash.sh   # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${SECONDS_PER_OP:-3}"

bash scripts/setup.sh
cargo build --release --quiet
bin=target/release/dealer-free-sis

venv=.venv-bench
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pillow==13.0.0 imagehash==4.3.2 numpy==2.4.6 scipy==1.17.1 PyWavelets==1.9.0
fi

sets=target/bench-sets
rm -rf "$sets" && mkdir -p "$sets/png" "$sets/mix"
fixtures="$PWD/tests/fixtures/images"
for f in "$fixtures"/*.png; do ln -s "$f" "$sets/png/"; done
ls "$fixtures"/*.png | head -n 20 | while read -r f; do ln -s "$f" "$sets/mix/"; done
ls "$fixtures"/*.jpg | head -n 5 | while read -r f; do ln -s "$f" "$sets/mix/"; done

pin="taskset -c 0"
command -v taskset >/dev/null 2>&1 || pin=""
results=target/bench-phash.jsonl
: > "$results"
for set in png mix; do
  $pin "$venv/bin/python" scripts/bench_imagehash.py "$sets/$set" --seconds "$secs" \
    | sed "s/^{/{\"set\": \"$set\", /" | tee -a "$results"
  $pin "$bin" bench phash --json --images "$sets/$set" \
    | sed "s/^{/{\"set\": \"$set\", /" | tee -a "$results"
  "$bin" bench phash --json --threads "$(nproc)" --images "$sets/$set" \
    | sed "s/^{/{\"set\": \"$set\", /" | tee -a "$results"
done

"$venv/bin/python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def rate(s, impl, op, threads=1):
    for r in rows:
        if r["set"] == s and r["implementation"] == impl and r["op"] == op and r["threads"] == threads:
            return r["per_second"]
print()
print("| set | op | imagehash (img/s, 1 core) | dealer-free-sis (img/s, 1 core) | ratio | dealer-free-sis, all cores |")
print("|---|---|---|---|---|---|")
allc = max(r["threads"] for r in rows)
for s in ("png", "mix"):
    for op in ("open_decode_hash", "hash_decoded"):
        py, rs, rs_all = rate(s, "imagehash", op), rate(s, "dealer-free-sis", op), rate(s, "dealer-free-sis", op, allc)
        print(f"| {s} | {op} | {py:.0f} | {rs:.0f} | {rs/py:.2f}x | {rs_all:.0f} ({allc} threads) |")
PY
