#!/usr/bin/env python3
"""Time Python imagehash on a folder of images, the way users run it, for comparison with
`dealer-free-sis bench phash --json` on the same files (scripts/bench_phash.sh runs both).

Prints JSON lines with the same fields as the Rust records (`implementation` = "imagehash"):
  op "open_decode_hash": imagehash.phash(PIL.Image.open(path)) per file;
  op "hash_decoded": imagehash.phash(img) on images already opened and loaded.
Each op runs for at least --seconds (after one warm-up pass) and reports images per second.
"""
import argparse
import json
import os
import sys
import time

import imagehash
import PIL
from PIL import Image

EXTS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}


def files_in(folder):
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if os.path.splitext(f)[1].lower() in EXTS:
                out.append(os.path.join(root, f))
    return out


def throughput(seconds, n, one_pass):
    one_pass()
    start = time.perf_counter()
    passes = 0
    while passes == 0 or time.perf_counter() - start < seconds:
        one_pass()
        passes += 1
    return passes * n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    paths = files_in(args.folder)
    if not paths:
        sys.exit(f"no images in {args.folder}")
    loaded = []
    for p in paths:
        im = Image.open(p)
        im.load()
        loaded.append(im)

    def open_decode_hash():
        for p in paths:
            imagehash.phash(Image.open(p))

    def hash_decoded():
        for im in loaded:
            imagehash.phash(im)

    common = {"primitive": "phash", "implementation": "imagehash",
              "version": f"imagehash {imagehash.__version__}, Pillow {PIL.__version__}",
              "threads": 1, "images": len(paths), "folder": args.folder}
    for op, fn in (("hash_decoded", hash_decoded), ("open_decode_hash", open_decode_hash)):
        rate = throughput(args.seconds, len(paths), fn)
        print(json.dumps({**common, "op": op, "per_second": round(rate, 3)}), flush=True)


if __name__ == "__main__":
    main()
