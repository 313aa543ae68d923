"""Writes the fixtures of cnnzoo's torchvision zoo tests to crates/models/tests/fixtures/zoo/:

- <model>.keys: every key of torchvision's state_dict for the model (at 10 classes) with its
  shape, for the test that checks cnnzoo's key mapping one to one (crates/models/tests/zoo_keys.rs);
  for the variants in KEYS.
- <model>.parity.json: PyTorch's logits for the parity variants (crates/models/tests/zoo_parity.rs).
- ops.json: inputs and outputs of the operations cnnzoo writes itself (crates/models/tests/zoo_ops.rs).

    scripts/python_env.sh torch torchvision safetensors numpy -- scripts/make_zoo_fixtures.py

CPU is enough. scripts/python_env.sh makes the git-ignored venv .venv-scripts/ with the packages
named on first use; set $PYTHON to run on another Python that has them instead (nothing is
installed into it).

Parity without megabytes of weights: the parity variants hold 3M to 129M parameters (15 MB to
0.5 GB as float32), far too much to commit. Instead every weight, and the input images, come from
a formula that this script and the Rust test both implement bit for bit (`formula_tensor` here,
`formula_tensor` in zoo_parity.rs): a SplitMix64 hash of (FNV-1a hash of the state_dict key,
element index) gives a float32 in [-1, 1), scaled by the tensor's role. PyTorch runs torchvision's
own model with exactly those weights, loaded with `load_state_dict(strict=True)`, in float64; the
fixture keeps the logits and a checksum of the weights. The Rust test regenerates the weights under
torchvision's key names, writes them to a safetensors file, imports that file through
`cnnzoo_models::import`, and compares its logits with PyTorch's.
"""
import json
import math
import pathlib

import numpy as np
import torch
import torchvision.models as tvm
from torchvision.ops import SqueezeExcitation

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/models/tests/fixtures/zoo"
NUM_CLASSES = 10

# Every registered torchvision variant: its builder and the keyword arguments that make it the
# architecture cnnzoo registers (googlenet without auxiliary heads, inception_v3 with its own).
VARIANTS = {
    "resnet18": (tvm.resnet18, {}),
    "resnet34": (tvm.resnet34, {}),
    "resnet50": (tvm.resnet50, {}),
    "resnet101": (tvm.resnet101, {}),
    "resnet152": (tvm.resnet152, {}),
    "resnext50_32x4d": (tvm.resnext50_32x4d, {}),
    "densenet121": (tvm.densenet121, {}),
    "densenet161": (tvm.densenet161, {}),
    "densenet169": (tvm.densenet169, {}),
    "densenet201": (tvm.densenet201, {}),
    "inception_v1": (tvm.googlenet, {"aux_logits": False, "init_weights": False}),
    "inception_v3": (tvm.inception_v3, {"aux_logits": True, "init_weights": False}),
    "vgg11": (tvm.vgg11, {}),
    "vgg16": (tvm.vgg16, {}),
    "vgg16_bn": (tvm.vgg16_bn, {}),
    "alexnet": (tvm.alexnet, {}),
    "mobilenet_v2": (tvm.mobilenet_v2, {}),
    "mobilenet_v3_large": (tvm.mobilenet_v3_large, {}),
    "mnasnet1_0": (tvm.mnasnet1_0, {}),
    **{f"efficientnet_b{b}": (getattr(tvm, f"efficientnet_b{b}"), {}) for b in range(8)},
}

# The parity variants and their input batches [N, 3, H, W]: small images where the architecture
# allows (odd sizes exercise ceil-mode pooling and adaptive pooling with uneven windows);
# inception_v3 at its 299x299, which its auxiliary head needs.
PARITY = {
    "resnet18": [2, 3, 64, 64],
    "resnext50_32x4d": [2, 3, 64, 64],
    "densenet121": [2, 3, 64, 64],
    "inception_v1": [2, 3, 67, 67],
    "inception_v3": [1, 3, 299, 299],
    "vgg11": [2, 3, 64, 64],
    "alexnet": [2, 3, 67, 67],
    "mobilenet_v2": [2, 3, 64, 64],
    "mobilenet_v3_large": [2, 3, 64, 64],
    "mnasnet1_0": [2, 3, 64, 64],
    "efficientnet_b0": [2, 3, 64, 64],
}

# The variants whose key lists are committed: the parity variants, and those whose keys follow
# another layout than their family's parity variant (bottleneck without groups, VGG with batch
# norm, another DenseNet growth rate, EfficientNet's deepest scaling and other batch norm).
KEYS = [*PARITY, "resnet50", "vgg16_bn", "densenet161", "efficientnet_b7"]

MASK = (1 << 64) - 1
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def fnv1a(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def formula_uniform(name, n):
    """n float32 values in [-1, 1), a multiple of 2^-23 each: SplitMix64 of (hash(name) xor
    index * golden ratio), top 24 bits."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a(name)) ^ (np.arange(n, dtype=np.uint64) * GOLDEN)
        z = z + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return u * np.float32(2.0) - np.float32(1.0)


def formula_tensor(key, shape):
    """The weight the formula gives a state_dict tensor, by its role: convolution and linear
    weights uniform with He variance 2 / fan_in; batch-norm scale around 1, shift, mean and biases
    around 0, variance in [0.5, 1.5)."""
    n = math.prod(shape)
    s = formula_uniform(key, n)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        v = s * np.float32(0.5) + np.float32(1.0)
    elif leaf == "running_mean":
        v = s * np.float32(0.1)
    elif leaf == "bias":
        v = s * np.float32(0.1)
    elif len(shape) == 1:
        v = s * np.float32(0.2) + np.float32(1.0)
    else:
        fan_in = math.prod(shape[1:])
        v = s * np.float32(math.sqrt(6.0 / fan_in))
    return v.reshape(shape)


def build(name):
    builder, kwargs = VARIANTS[name]
    return builder(weights=None, num_classes=NUM_CLASSES, **kwargs)


def write_keys(name, model):
    lines = [f"{k} {'x'.join(map(str, t.shape)) or 'scalar'}" for k, t in model.state_dict().items()]
    (OUT / f"{name}.keys").write_text("\n".join(lines) + "\n")


def parity(name, model):
    # Keep the state_dict's own object: its metadata carries MnasNet's format version.
    state = model.state_dict()
    checksum = 0.0
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        values = formula_tensor(key, tuple(tensor.shape))
        checksum += float(values.astype(np.float64).sum())
        state[key] = torch.from_numpy(values)
    model.load_state_dict(state, strict=True)
    model = model.double().eval()
    shape = PARITY[name]
    images = torch.from_numpy(formula_uniform("input", math.prod(shape)).reshape(shape)).double()
    aux = {}
    if name == "inception_v3":
        # torchvision runs the auxiliary head only while training; run it on Mixed_6e's output.
        def run_aux(_module, _inputs, output):
            aux["x"] = model.AuxLogits(output)

        model.Mixed_6e.register_forward_hook(run_aux)
    with torch.no_grad():
        logits = model(images)
    fixture = {
        "model": name,
        "num_classes": NUM_CLASSES,
        "input_shape": shape,
        "weights_checksum": checksum,
        "logits": logits.flatten().tolist(),
    }
    if aux:
        fixture["aux_logits"] = aux["x"].flatten().tolist()
    (OUT / f"{name}.parity.json").write_text(json.dumps(fixture, indent=1) + "\n")
    scale = logits.abs().max().item()
    print(f"{name}: logits {list(logits.shape)}, max |logit| {scale:.3g}")


def ops_fixture():
    """Squeeze-excitation (both gates), the activations, and a depthwise convolution, on values
    drawn by the same formula."""
    torch.manual_seed(0)
    x = torch.from_numpy(formula_uniform("ops.x", 2 * 8 * 5 * 5).reshape(2, 8, 5, 5) * np.float32(3.0))
    fixture = {"x_shape": list(x.shape), "x": x.flatten().tolist()}
    for name, act, gate in [("se_silu_sigmoid", torch.nn.SiLU, torch.nn.Sigmoid), ("se_relu_hardsigmoid", torch.nn.ReLU, torch.nn.Hardsigmoid)]:
        se = SqueezeExcitation(8, 4, activation=act, scale_activation=gate)
        fixture[name] = {
            **{k: {"shape": list(v.shape), "values": v.flatten().tolist()} for k, v in se.state_dict().items()},
            "out": se(x).detach().flatten().tolist(),
        }
    for name, fn in [("hardswish", torch.nn.functional.hardswish), ("hardsigmoid", torch.nn.functional.hardsigmoid), ("silu", torch.nn.functional.silu), ("relu6", torch.nn.functional.relu6)]:
        fixture[name] = fn(x).flatten().tolist()
    conv = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
    fixture["depthwise"] = {"weight": conv.weight.detach().flatten().tolist(), "out": conv(x).detach().flatten().tolist()}
    conv = torch.nn.Conv2d(8, 4, 3, padding=1, groups=2, bias=False)
    fixture["grouped"] = {"weight": conv.weight.detach().flatten().tolist(), "out": conv(x).detach().flatten().tolist()}
    (OUT / "ops.json").write_text(json.dumps(fixture) + "\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:
        if name not in KEYS:
            continue
        model = build(name)
        write_keys(name, model)
        if name in PARITY:
            parity(name, model)
    ops_fixture()


if __name__ == "__main__":
    main()
