#!/usr/bin/env python3
"""Generate tests/fixtures/vectors/lanczos/pillow_resize.txt: Pillow 13.0.0's LANCZOS resize of
grey images of many shapes (around the pass-order boundary too) to imagehash's thumbnail sizes.

Inputs are not stored: each is regenerated from (width, height, seed, kind) by the same
32-bit LCG on both sides, so the file stays small. Deterministic. Run with the venv described in
scripts/gen_synthetic_fixtures.py.

Format, one case per line:
    width height seed kind out_w out_h <out_w*out_h bytes of Pillow's output in hex>
kind 0 = noise, 1 = smooth (noise averaged over 8 neighbours in a row), 2 = two levels.
"""
import os
import random

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "vectors", "lanczos", "pillow_resize.txt")


def pixels(w, h, seed, kind):
    """The LCG image, mirrored exactly by the Rust test."""
    x = seed & 0xFFFFFFFF
    out = bytearray(w * h)
    for i in range(w * h):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = x >> 24
    a = np.frombuffer(bytes(out), np.uint8).reshape(h, w)
    if kind == 1:
        a = np.array([[int(a[r, max(0, c - 7):c + 1].astype(int).sum() // len(a[r, max(0, c - 7):c + 1])) for c in range(w)] for r in range(h)], np.uint8)
    elif kind == 2:
        a = np.where(a >= 128, 200, 30).astype(np.uint8)
    return a


def main():
    rng = random.Random(20261124)
    lines = []
    for case in range(240):
        ow, oh = rng.choice([(32, 32), (9, 8), (8, 8)])
        w = rng.randint(1, 90)
        if case % 2:
            h = oh + 2 * (w - ow) + rng.randint(-1, 1)  # the pass-order boundary
            if h < 1:
                h = rng.randint(1, 90)
        else:
            h = rng.randint(1, 90)
        seed = rng.getrandbits(32)
        kind = case % 3
        a = pixels(w, h, seed, kind)
        r = np.asarray(Image.fromarray(a, "L").resize((ow, oh), Image.Resampling.LANCZOS))
        lines.append(f"{w} {h} {seed} {kind} {ow} {oh} {r.tobytes().hex()}")
    with open(OUT, "w") as f:
        f.write("# Pillow 13.0.0 Image.resize(LANCZOS) vectors; see scripts/gen_resize_vectors.py\n")
        f.write("\n".join(lines) + "\n")
    print(len(lines), "cases")


if __name__ == "__main__":
    main()
