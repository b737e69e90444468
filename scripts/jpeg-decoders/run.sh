#!/usr/bin/env bash
# Dumps Pillow's grey pixels of the fixture JPEGs, then runs the comparison.
# Needs the venv of scripts/bench_phash.sh (.venv-bench); run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p target/pillow-grey
../../.venv-bench/bin/python - <<'PY'
import glob, os
from PIL import Image
for p in glob.glob('../../tests/fixtures/images*/*.jpg'):
    open('target/pillow-grey/' + os.path.basename(p) + '.raw', 'wb').write(Image.open(p).convert('L').tobytes())
PY
cargo run --release -q
