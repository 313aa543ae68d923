"""Writes what torchvision does to a few small uint8 images, for the Rust ports to be checked
against, to crates/cifar/tests/fixtures/augment/:

- ops.bin.gz: every operation of AutoAugment / RandAugment / TrivialAugmentWide
  (torchvision.transforms.autoaugment._apply_op, which calls torchvision's functional API on the
  uint8 tensors) at a few magnitudes, both signs for the signed ones, fill 0 and a non-zero fill
  for the warps, on three synthetic images (two 32x32, one 20x28).
- spaces.bin.gz: the magnitude of every bin of each policy's `_augmentation_space` (AutoAugment
  with 10 bins, RandAugment with 10 and 31, TrivialAugmentWide with 31) for 32x32 and 20x28.
- pad_erase.bin.gz: `F.pad` by 4 in modes constant (fill 0 and 128), reflect and edge, whole
  and cropped back to 32x32 at fixed corners, and `F.erase` with value 0 of fixed boxes of the
  image normalised with the CIFAR-10 statistics.

Run from anywhere (about a minute; torch comes from PyPI, or from
PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu where that is reachable):

    scripts/python_env.sh torch torchvision numpy -- scripts/make_augment_fixtures.py

scripts/python_env.sh makes the git-ignored venv .venv-scripts/ with the packages named on first
use; set $PYTHON to run on another Python that has them instead (nothing is installed into it).

The images are synthetic (smooth colour noise with hard-edged shapes, a low-contrast one, and one
with a two-valued and a constant channel for the edge cases of equalize and autocontrast), so
no data set is copied into the repository. Each file is gzip of records, one after another:

    u16 key length, key (UTF-8, space-separated name=value pairs, e.g.
        "kind=op image=1 op=Rotate magnitude=-30.0 fill=128,64,200"),
    u8 dtype (0: uint8, 1: float32), u8 ndim, ndim x u32 dims, the values (C order),
    all little-endian. Magnitudes are written with repr(), which Rust's f64 parser reads back
    to the same double.
"""
import gzip
import pathlib
import struct

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from torchvision.transforms import AutoAugment, InterpolationMode, RandAugment, TrivialAugmentWide
from torchvision.transforms.autoaugment import _apply_op

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/cifar/tests/fixtures/augment"
MEAN = (0.49139968, 0.48215841, 0.44653091)
STD = (0.24703223, 0.24348513, 0.26158784)
FILLS = ([0, 0, 0], [128, 64, 200])


class Records:
    """A fixture file being written: records appended in order, gzipped on close."""

    def __init__(self, name):
        self.path = OUT / name
        self.parts = []

    def add(self, key, array):
        array = np.ascontiguousarray(array)
        dtype = {np.dtype(np.uint8): 0, np.dtype(np.float32): 1}[array.dtype]
        key = key.encode()
        self.parts.append(struct.pack("<H", len(key)) + key)
        self.parts.append(struct.pack("<BB", dtype, array.ndim))
        self.parts.append(struct.pack(f"<{array.ndim}I", *array.shape))
        self.parts.append(array.astype(array.dtype.newbyteorder("<")).tobytes())

    def close(self):
        # mtime=0 keeps the file identical from run to run.
        with gzip.GzipFile(self.path, "wb", compresslevel=9, mtime=0) as f:
            f.write(b"".join(self.parts))
        print(f"{self.path.relative_to(ROOT)}: {self.path.stat().st_size} bytes")


def smooth_noise(generator, height, width, low, high):
    """Low-frequency colour noise in [low, high]: image-like, unlike white noise."""
    coarse = torch.rand((1, 3, height // 6 + 2, width // 6 + 2), generator=generator)
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return (low + (high - low) * fine.clamp(0, 1))[0]


def images():
    generator = torch.Generator().manual_seed(20240607)
    # A full-range image with a bright rectangle and a dark disc: edges for the warps and sharpness.
    first = smooth_noise(generator, 32, 32, 0.0, 255.0)
    first[:, 6:14, 18:29] = torch.tensor([250.0, 240.0, 30.0]).view(3, 1, 1)
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    first[:, (y - 22) ** 2 + (x - 10) ** 2 < 30] = 12.0
    # A low-contrast, non-square image: autocontrast and equalize have work to do.
    second = smooth_noise(generator, 20, 28, 70.0, 170.0)
    # One channel of two values and one constant: equalize's zero step, autocontrast's constant.
    third = smooth_noise(generator, 32, 32, 0.0, 255.0)
    third[1] = torch.where(third[1] > 128, 200.0, 40.0)
    third[2] = 99.0
    return [image.round().to(torch.uint8) for image in (first, second, third)]


def op_cases():
    """(op name, magnitude as _apply_op receives it, whether it is a warp)."""
    cases = []
    for name, magnitudes in [
        ("ShearX", (0.1, 0.3, 0.66)),
        ("ShearY", (0.1, 0.3, 0.66)),
        ("TranslateX", (4.8, 14.501511)),
        ("TranslateY", (3.0, 9.666667)),
        ("Rotate", (10.0, 30.0, 90.0, 135.0)),
    ]:
        for magnitude in magnitudes:
            cases += [(name, sign * magnitude, True) for sign in (1.0, -1.0)]
    for name in ("Brightness", "Color", "Contrast", "Sharpness"):
        cases += [(name, magnitude, False) for magnitude in (0.3, -0.3, 0.9, -0.9, 0.99, -0.99)]
    cases += [("Posterize", float(bits), False) for bits in (2, 4, 6, 8)]
    cases += [("Solarize", threshold, False) for threshold in (255.0, 170.0, 127.5, 85.0, 0.0)]
    cases += [(name, 0.0, False) for name in ("AutoContrast", "Equalize", "Invert", "Identity")]
    return cases


def write_ops(inputs):
    records = Records("ops.bin.gz")
    for index, image in enumerate(inputs):
        records.add(f"kind=input image={index}", image.numpy())
    for index, image in enumerate(inputs):
        for name, magnitude, warp in op_cases():
            for fill in FILLS if warp else FILLS[:1]:
                out = _apply_op(image, name, magnitude, InterpolationMode.NEAREST, [float(v) for v in fill])
                assert out.dtype == torch.uint8 and out.shape == image.shape
                key = f"kind=op image={index} op={name} magnitude={magnitude!r} fill={','.join(map(str, fill))}"
                records.add(key, out.numpy())
    records.close()


def write_spaces():
    records = Records("spaces.bin.gz")
    for height, width in ((32, 32), (20, 28)):
        spaces = [
            ("AutoAugment", 10, AutoAugment()._augmentation_space(10, (height, width))),
            ("RandAugment", 10, RandAugment()._augmentation_space(10, (height, width))),
            ("RandAugment", 31, RandAugment()._augmentation_space(31, (height, width))),
            ("TrivialAugmentWide", 31, TrivialAugmentWide()._augmentation_space(31)),
        ]
        for policy, bins, space in spaces:
            for name, (magnitudes, signed) in space.items():
                key = f"kind=space policy={policy} bins={bins} height={height} width={width} op={name} signed={int(signed)}"
                records.add(key, magnitudes.to(torch.float32).reshape(-1).numpy())
    records.close()


def write_pad_erase(image):
    records = Records("pad_erase.bin.gz")
    records.add("kind=input image=0", image.numpy())
    for mode, fill in (("constant", 0), ("constant", 128), ("reflect", 0), ("edge", 0)):
        padded = F.pad(image, 4, fill=fill, padding_mode=mode)
        assert padded.dtype == torch.uint8 and padded.shape == (3, 40, 40)
        records.add(f"kind=pad image=0 padding=4 mode={mode} fill={fill}", padded.numpy())
        for top, left in ((0, 0), (3, 6), (8, 8), (7, 1)):
            crop = F.crop(padded, top, left, 32, 32)
            records.add(f"kind=pad_crop image=0 padding=4 mode={mode} fill={fill} top={top} left={left}", crop.numpy())
    normalized = F.normalize(image.to(torch.float32) / 255.0, MEAN, STD)
    records.add("kind=normalized image=0", normalized.numpy())
    for i, j, h, w in ((5, 7, 10, 12), (20, 0, 12, 32), (0, 25, 32, 7), (16, 16, 1, 1)):
        erased = F.erase(normalized, i, j, h, w, torch.tensor(0.0))
        records.add(f"kind=erase image=0 i={i} j={j} h={h} w={w} value=0", erased.numpy())
    records.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    inputs = images()
    write_ops(inputs)
    write_spaces()
    write_pad_erase(inputs[0])


if __name__ == "__main__":
    main()
