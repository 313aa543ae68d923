"""Writes the small synthetic images `cnnzoo predict` is tested on, to crates/cli/tests/fixtures/images/,
with the probabilities PyTorch gives for them (PIL decoding, torchvision's Resize + CenterCrop,
the CIFAR-10 normalisation) under the weights of crates/models/tests/fixtures/parity/resnet.ckpt.

    scripts/python_env.sh torch torchvision pillow -- scripts/make_image_fixtures.py

scripts/python_env.sh makes the git-ignored venv .venv-scripts/ with the packages named on first
use; set $PYTHON to run on another Python that has them instead (nothing is installed into it).

One file per format `predict` reads, of different sizes and shapes so that every path of the
preprocessing runs: RGBA PNG shrunk, greyscale PNG at the input size, BMP enlarged, lossless
WebP shrunk, JPEG shrunk. JPEG decoders differ by a grey level here and there, so the JPEG's
probabilities are not recorded.
"""
import collections
import json
import pathlib
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from reference_models import build  # noqa: E402

OUT = ROOT / "crates/cli/tests/fixtures/images"
MEAN = (0.49139968, 0.48215841, 0.44653091)
STD = (0.24703223, 0.24348513, 0.26158784)


def smooth_noise(rng, height, width, channels):
    """Low-frequency colour noise: image-like, unlike white noise, and never uniform."""
    coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, channels)).astype(np.uint8)
    mode = "RGB" if channels == 3 else "RGBA"
    return np.asarray(Image.fromarray(coarse, mode).resize((width, height), Image.BICUBIC))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    y, x = np.mgrid[0:40, 0:48]
    gradient = np.stack([x * 5, y * 6, 255 - x * 5, 128 + (x + y) % 128], axis=-1).astype(np.uint8)
    Image.fromarray(gradient, "RGBA").save(OUT / "gradient.png")
    Image.fromarray(smooth_noise(rng, 32, 32, 3)[:, :, 0], "L").save(OUT / "grey.png")
    Image.fromarray(smooth_noise(rng, 30, 24, 3), "RGB").save(OUT / "small.bmp")
    Image.fromarray(smooth_noise(rng, 64, 64, 3), "RGB").save(OUT / "square.webp", lossless=True)
    Image.fromarray(smooth_noise(rng, 60, 80, 3), "RGB").save(OUT / "wide.jpg", quality=90)

    checkpoint = torch.load(ROOT / "crates/models/tests/fixtures/parity/resnet.ckpt", weights_only=False)
    model = build("resnet")
    model.load_state_dict(collections.OrderedDict(
        (k.removeprefix("model."), v.float() if v.is_floating_point() else v)
        for k, v in checkpoint["state_dict"].items()))
    model.eval()
    preprocess = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor(),
                                     transforms.Normalize(MEAN, STD)])
    expected = {}
    for name in ["gradient.png", "grey.png", "small.bmp", "square.webp"]:
        image = preprocess(Image.open(OUT / name).convert("RGB"))[None]
        with torch.no_grad():
            expected[name] = torch.softmax(model(image), 1)[0].tolist()
    (OUT / "expected_probabilities.json").write_text(json.dumps(expected, indent=1) + "\n")
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
