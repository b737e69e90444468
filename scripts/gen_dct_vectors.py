#!/usr/bin/env python3
"""Generate the golden vectors for crates/phr-sis/src/phash/dct.rs.

Writes tests/fixtures/vectors/dct/scipy_dct2_32x32.txt: 32x32 uint8 images, together with
the 8x8 corner of scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1) as exact
float64 bit patterns and imagehash's phash of the image. The Rust DCT must reproduce every
corner value bit for bit, because on degenerate images (flat, stripes, checkerboards,
mirror-symmetric) SciPy's rounding noise decides which coefficients exceed the median.

Run with the reference environment (numpy 2.4.6, scipy 1.17.1, Pillow 13.0.0,
imagehash 4.3.2), from anywhere:

    /tmp/pyref/bin/python scripts/gen_dct_vectors.py [--out PATH]

The output is deterministic (fixed seed, no time or platform input besides the libraries).
Each hash is checked against imagehash.phash(Image.fromarray(pixels)) itself before writing.
"""

import argparse
import base64
import sys
from pathlib import Path

import imagehash
import numpy as np
import PIL
import scipy
import scipy.fftpack
from PIL import Image, ImageDraw

SEED = 0x5C1BDC7  # fixed seed; changing it changes every vector
SIZE = 32
HASH = 8
DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent
    / "tests/fixtures/vectors/dct/scipy_dct2_32x32.txt"
)


def u8(a):
    """Clips and converts to a C-contiguous 32x32 uint8 array."""
    a = np.clip(np.rint(np.asarray(a, dtype=np.float64)), 0, 255).astype(np.uint8)
    assert a.shape == (SIZE, SIZE)
    return np.ascontiguousarray(a)


def smooth(rng, cells):
    """Random smooth image: bilinear upsampling of a cells x cells random grid."""
    grid = rng.uniform(0, 255, (cells + 1, cells + 1))
    t = np.linspace(0, cells, SIZE)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def cases(rng):
    """Yields (label, 32x32 uint8 array) in a fixed order."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]

    for n in range(28):
        yield f"uniform-{n}", u8(rng.integers(0, 256, (SIZE, SIZE)))
    for n, cells in enumerate([1, 2, 2, 3, 3, 4, 4, 5, 6, 8, 8, 12, 16, 16]):
        yield f"smooth{cells}-{n}", u8(smooth(rng, cells))
    for n in range(4):
        yield f"uniform-narrow-{n}", u8(rng.integers(100, 104, (SIZE, SIZE)))

    for v in [0, 1, 2, 7, 64, 100, 127, 128, 129, 200, 254, 255]:
        yield f"flat-{v}", u8(np.full((SIZE, SIZE), v))

    for n in range(6):
        row = rng.integers(0, 256, SIZE)
        yield f"hstripes-random-{n}", u8(np.tile(row[:, None], (1, SIZE)))
        yield f"vstripes-random-{n}", u8(np.tile(row[None, :], (SIZE, 1)))
    for period in [2, 4, 8, 16]:
        a, b = rng.integers(0, 256, 2)
        band = np.where((np.arange(SIZE) // (period // 2)) % 2 == 0, a, b)
        yield f"hstripes-period{period}", u8(np.tile(band[:, None], (1, SIZE)))
        yield f"vstripes-period{period}", u8(np.tile(band[None, :], (SIZE, 1)))
    yield "hstripes-half", u8(np.where(yy < 16, 255, 0))
    yield "vstripes-half", u8(np.where(xx < 16, 0, 255))

    for cell in [1, 2, 4, 8, 16]:
        board = ((yy // cell) + (xx // cell)) % 2
        yield f"checker{cell}-0-255", u8(np.where(board == 0, 0, 255))
        a, b = rng.integers(0, 256, 2)
        yield f"checker{cell}-{a}-{b}", u8(np.where(board == 0, a, b))
    yield "checker1-offset", u8(np.where(((yy + 1 + xx) % 2) == 0, 10, 11))
    yield "checker3", u8(np.where(((yy // 3) + (xx // 3)) % 2 == 0, 50, 150))

    for n in range(4):
        half = rng.integers(0, 256, (SIZE, SIZE // 2))
        yield f"mirror-lr-{n}", u8(np.hstack([half, half[:, ::-1]]))
        half = rng.integers(0, 256, (SIZE // 2, SIZE))
        yield f"mirror-ud-{n}", u8(np.vstack([half, half[::-1, :]]))
        q = rng.integers(0, 256, (SIZE // 2, SIZE // 2))
        top = np.hstack([q, q[:, ::-1]])
        yield f"mirror-both-{n}", u8(np.vstack([top, top[::-1, :]]))
        a = rng.integers(0, 256, (SIZE, SIZE))
        yield f"transpose-sym-{n}", u8(np.triu(a) + np.triu(a, 1).T)
        a = rng.integers(0, 256, (SIZE // 2, SIZE))
        yield f"rot180-sym-{n}", u8(np.vstack([a, a[::-1, ::-1]]))
    for n in range(2):
        q = u8(smooth(rng, 3))[: SIZE // 2, : SIZE // 2]
        top = np.hstack([q, q[:, ::-1]])
        yield f"mirror-both-smooth-{n}", u8(np.vstack([top, top[::-1, :]]))
    yield "antisym-lr", u8(np.hstack([np.full((SIZE, 16), 100), np.full((SIZE, 16), 156)]))

    for n, k in enumerate([2, 2, 3, 3, 4, 4, 2, 3]):
        values = rng.choice(256, size=k, replace=False)
        yield f"few{k}-values-{n}", u8(values[rng.integers(0, k, (SIZE, SIZE))])
    for n in range(2):
        yield f"binary-sparse-{n}", u8(np.where(rng.random((SIZE, SIZE)) < 0.05, 255, 0))
    for n in range(2):
        v = rng.integers(0, 255)
        yield f"two-adjacent-{n}", u8(np.where(rng.random((SIZE, SIZE)) < 0.5, v, v + 1))

    for r, c in [(0, 0), (0, 31), (31, 0), (31, 31), (15, 16), (16, 15), (7, 3), (20, 28)]:
        img = np.zeros((SIZE, SIZE))
        img[r, c] = 255
        yield f"pixel-{r}-{c}", u8(img)
    for r, c, bg, fg in [(10, 10, 128, 129), (0, 5, 255, 0), (31, 17, 200, 0), (16, 16, 1, 0)]:
        img = np.full((SIZE, SIZE), bg)
        img[r, c] = fg
        yield f"pixel-{r}-{c}-on-{bg}", u8(img)

    yield "ramp-h", u8(xx * 255 / 31)
    yield "ramp-v", u8(yy * 255 / 31)
    yield "ramp-h-int8", u8(xx * 8)
    yield "ramp-v-int", u8(yy)
    yield "ramp-diag", u8((xx + yy) * 255 / 62)
    yield "ramp-antidiag", u8((xx + (31 - yy)) * 4)
    yield "ramp-h-rev", u8((31 - xx) * 3 + 7)
    yield "ramp-wrap", u8((xx * 16) % 256)
    yield "ramp-product", u8(xx * yy / 4)
    yield "ramp-radial", u8(np.hypot(xx - 15.5, yy - 15.5) * 11)
    yield "ramp-steps", u8((xx // 4) * 32)
    yield "ramp-shallow", u8(100 + xx // 8)

    for n in range(6):
        yield f"drawn-{n}", drawn(rng)


def drawn(rng):
    """A 256x256 drawing reduced with imagehash's own pipeline (convert L, LANCZOS resize)."""
    img = Image.new("RGB", (256, 256), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 7))):
        box = sorted(rng.integers(0, 256, 2)), sorted(rng.integers(0, 256, 2))
        xy = [int(box[0][0]), int(box[1][0]), int(box[0][1]), int(box[1][1])]
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle(xy, fill=fill)
        else:
            draw.ellipse(xy, fill=fill)
    small = img.convert("L").resize((SIZE, SIZE), Image.LANCZOS)
    return np.ascontiguousarray(np.asarray(small))


def corner_and_hash(pixels):
    """The imagehash.phash computation, split so the corner values can be recorded."""
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    corner = dct[:HASH, :HASH]
    bits = (corner > np.median(corner)).flatten()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return corner, f"{value:016x}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    records = []
    labels = set()
    tie_sensitive = 0
    for label, pixels in cases(rng):
        assert label not in labels, label
        labels.add(label)
        assert pixels.dtype == np.uint8 and pixels.shape == (SIZE, SIZE)
        corner, hash_hex = corner_and_hash(pixels)
        reference = str(imagehash.phash(Image.fromarray(pixels)))
        assert reference == hash_hex, (label, reference, hash_hex)
        scale = np.max(np.abs(corner))
        med = np.median(corner)
        if np.any((np.abs(corner - med) <= 1e-9 * scale)):
            tie_sensitive += 1
        lines = [f"@ {label} {hash_hex}", base64.b64encode(pixels.tobytes()).decode("ascii")]
        for row in corner:
            lines.append(" ".join(f"{int(v):016x}" for v in row.view(np.uint64)))
        records.append("\n".join(lines))

    header = f"""\
# Golden vectors for crates/phr-sis/src/phash/dct.rs: SciPy's 2-D DCT-II, bit for bit.
# GENERATED by scripts/gen_dct_vectors.py -- do not edit by hand; rerun the script instead.
# Reference: numpy {np.__version__}, scipy {scipy.__version__}, Pillow {PIL.__version__}, imagehash {imagehash.__version__}.
# Seed {SEED:#x}; {len(records)} records.
#
# Lines starting with '#' are comments. Each record is 10 lines:
#   @ <label> <hash>
#       label: unique name, no spaces (which generator made the image).
#       hash:  imagehash's phash of the image, 16 lowercase hex digits, equal to
#              str(imagehash.phash(Image.fromarray(pixels))): the 64 bits of
#              corner > numpy.median(corner) in row-major order, first = most significant.
#   <pixels>
#       the 32x32 uint8 image in row-major order (1024 bytes), standard base64 (RFC 4648,
#       with '=' padding, 1368 characters).
#   8 lines, line r (r = 0..7): corner[r][0] .. corner[r][7], separated by single spaces,
#       where corner = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8];
#       each value is its IEEE-754 float64 bit pattern as 16 lowercase hex digits.
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + "\n".join(records) + "\n", encoding="ascii")
    size = args.out.stat().st_size
    print(
        f"wrote {len(records)} records ({tie_sensitive} with coefficients within 1e-9 of the "
        f"median), {size} bytes, to {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
