#!/usr/bin/env python3
"""The Python original of examples/resize, as a benchmark.

The seed resizes images with PIL on a multiprocessing.Pool:

    def resize_image(image_path):
        image = Image.open(image_path)
        resized_image = image.resize((500, 500))
        resized_image.save(f'resized_{image_path}')

    pool = multiprocessing.Pool(processes=4)
    pool.map(resize_image, image_paths)

This script runs that function unchanged except for where it saves (the
output folder is explicit instead of the current one), in three ways:

  --mode pool   multiprocessing.Pool(processes=N).map, as the seed does
  --mode seq    the same function in a plain loop
  --draft       Image.draft('RGB', size) before the resize: libjpeg decodes
                at 1/2, 1/4 or 1/8 scale (the fair match for the Rust
                example's scaled JPEG decoding); combines with either mode

It prints one line: "<label>: N images in T s, X images/s". The time covers
pool.map (or the loop) only; the pool's processes are started before it.

    python3 examples/resize/resize_pil.py DIR --processes 2 --out OUT [--draft] [--mode seq]
"""

import argparse
import multiprocessing
import os
import sys
import time

from PIL import Image

SIZE = (500, 500)
OUT_DIR = "."
DRAFT = False


def configure(size, out_dir, draft):
    """Sets the globals in this process (and in each pool worker)."""
    global SIZE, OUT_DIR, DRAFT
    SIZE, OUT_DIR, DRAFT = size, out_dir, draft


def resize_image(image_path):
    """The seed's function; only the save path names the output folder."""
    image = Image.open(image_path)
    if DRAFT:
        image.draft("RGB", SIZE)
    resized_image = image.resize(SIZE)
    resized_image.save(os.path.join(OUT_DIR, f"resized_{os.path.basename(image_path)}"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_dir")
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--size", default="500x500", help="WIDTHxHEIGHT (default 500x500)")
    parser.add_argument("--mode", choices=["pool", "seq"], default="pool")
    parser.add_argument("--draft", action="store_true", help="decode JPEGs at reduced scale first")
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.lower().split("x"))
    names = sorted(os.listdir(args.input_dir))
    paths = [os.path.join(args.input_dir, n) for n in names
             if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    if not paths:
        sys.exit(f"error: no JPEG or PNG images in {args.input_dir}")
    os.makedirs(args.out, exist_ok=True)
    configure((width, height), args.out, args.draft)

    if args.mode == "pool":
        pool = multiprocessing.Pool(processes=args.processes, initializer=configure,
                                    initargs=((width, height), args.out, args.draft))
        start = time.perf_counter()
        pool.map(resize_image, paths)
        elapsed = time.perf_counter() - start
        pool.close()
        pool.join()
        label = f"PIL {'draft' if args.draft else 'seed'} Pool({args.processes})"
    else:
        start = time.perf_counter()
        for path in paths:
            resize_image(path)
        elapsed = time.perf_counter() - start
        label = f"PIL {'draft' if args.draft else 'seed'} loop"
    print(f"{label}: {len(paths)} images in {elapsed:.3f} s, {len(paths) / elapsed:.1f} images/s")


if __name__ == "__main__":
    main()
