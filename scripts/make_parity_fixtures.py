"""Writes the PyTorch-made files that cnnzoo's import parity tests load, with PyTorch's logits for
them, to crates/models/tests/fixtures/parity/. CI reads the committed files and never needs PyTorch.

    scripts/python_env.sh torch safetensors -- scripts/make_parity_fixtures.py
    scripts/python_env.sh torch safetensors -- scripts/make_parity_fixtures.py --tutorial DIR   # see below

Any recent torch does, CPU is enough. scripts/python_env.sh makes the git-ignored venv
.venv-scripts/ with the packages named on first use; set $PYTHON to run on another Python that has
them instead (nothing is installed into it).

What it writes (seeded, so a rerun reproduces the same numbers on the same PyTorch build):
- the four CIFAR models at their full size, one per container format: googlenet.safetensors,
  resnet.ckpt (a Lightning 2.x checkpoint: zip torch.save, weights under `state_dict` with the
  `model.` prefix, beside loops, callbacks, optimizer and scheduler state), resnet_preact.ckpt
  (a Lightning 1.0 checkpoint in the legacy pre-1.6 torch.save format, as the reference tutorial
  published its trained models), densenet.pt (zip torch.save of a plain state_dict). Their
  weights are stored as float16 to keep each file near 0.5 MB; PyTorch computes the expected
  logits from exactly those values, widened to float64.
- a small ResNet (one block per group, 4/8/16 channels) in float32 in every format cnnzoo
  reads: tiny_resnet.pt (zip), tiny_resnet_legacy.pt (legacy), tiny_resnet.safetensors,
  tiny_resnet.ckpt (Lightning 2.x with SGD momentum buffers), tiny_resnet_module.pt
  (torch.save of the whole nn.Module), tiny_resnet_wrapped.pth (torchvision's reference training
  scripts: the DDP-wrapped `module.` state dict under "model"), and three broken files for the
  error tests:
  tiny_resnet_missing.safetensors (12 tensors removed), tiny_resnet_unexpected.safetensors
  (3 foreign tensors added), tiny_resnet_shapes.safetensors (2 tensors of the wrong shape).
- expected.json: the input images (3 x 3x32x32, float32) and, per file, the model name, the
  model parameters that differ from the registry defaults, and the expected logits.

Weights are random, and so are the batch-norm statistics: affine weights and biases are drawn at
random, running statistics are measured on random images (so activations keep a sensible scale
through the whole network) and then perturbed, so that a loader that skipped them would fail.

With --tutorial DIR, the reference tutorial's published Lightning checkpoints in DIR (ResNet.ckpt,
ResNetPreAct.ckpt, GoogleNet.ckpt, DenseNet.ckpt) are run on the same images and their logits
written to tutorial_expected.json, for the test that CNNZOO_TUTORIAL_DIR=DIR enables.
"""
import argparse
import collections
import copy
import json
import pathlib
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference_models import ResNet, build  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/models/tests/fixtures/parity"
TINY = {"num_blocks": [1, 1, 1], "channels": [4, 8, 16]}
NUM_IMAGES = 3


def randomize(model, generator):
    """Random batch-norm affine parameters, then running statistics measured on random images and
    perturbed: every tensor of the state_dict carries information."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.uniform_(-0.2, 0.2, generator=generator)
        for bn in bns:
            bn.weight.uniform_(0.6, 1.4, generator=generator)
            bn.bias.normal_(0.0, 0.2, generator=generator)
            bn.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(4):
            model(torch.randn(16, 3, 32, 32, generator=generator))
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(0.1 * torch.randn(bn.running_mean.shape, generator=generator))
            bn.running_var.mul_(torch.empty(bn.running_var.shape).uniform_(0.8, 1.25, generator=generator))
    model.eval()
    return model


def round_to_half(model):
    """Makes every float tensor exactly representable in float16, so a float16 file holds the very
    weights the expected logits come from."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def state_dict(model, dtype):
    return collections.OrderedDict(
        (k, v.to(dtype) if v.is_floating_point() else v) for k, v in model.state_dict().items())


def logits(model, images):
    """float64 logits: the reference the float32 forward passes are compared with."""
    with torch.no_grad():
        return copy.deepcopy(model).double()(images.double()).tolist()


def lightning_v2(model, sd, step_optimizer, generator):
    """What Lightning 2.x's Trainer.save_checkpoint writes for a LightningModule holding the network
    as `self.model` and trained with SGD + MultiStepLR (keys and nesting checked against
    lightning 2.6)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[100, 150], gamma=0.1)
    if step_optimizer:
        # A real step fills the momentum buffers (tensors outside the state_dict); the weights
        # are restored afterwards so that the checkpoint matches the expected logits.
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        loss = model(torch.randn(2, 3, 32, 32, generator=generator)).logsumexp(1).mean()
        loss.backward()
        optimizer.step()
        scheduler.step()
        model.load_state_dict(saved)
        model.eval()
    score = torch.tensor(0.9184)
    checkpoint_callback = (
        "ModelCheckpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None}")
    return {
        "epoch": 162,
        "global_step": 56862,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": collections.OrderedDict((f"model.{k}", v) for k, v in sd.items()),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 56862},
                               "epoch_progress": {"total": {"ready": 163, "completed": 162}}}},
        "callbacks": {checkpoint_callback: {
            "monitor": "val_acc", "best_model_score": score, "current_score": score,
            "best_model_path": "saved_models/ResNet/epoch=162.ckpt",
            "best_k_models": {"saved_models/ResNet/epoch=162.ckpt": score},
            "kth_best_model_path": "saved_models/ResNet/epoch=162.ckpt", "kth_value": score,
            "last_model_path": "", "dirpath": "saved_models/ResNet"}},
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [scheduler.state_dict()],  # holds a collections.Counter
        "hparams_name": "kwargs",
        "hyper_parameters": {"model_name": "ResNet",
                             "model_hparams": {"num_classes": 10, "c_hidden": [16, 32, 64],
                                               "num_blocks": [3, 3, 3], "act_fn_name": "relu"},
                             "optimizer_name": "SGD",
                             "optimizer_hparams": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}},
    }


def lightning_v1(sd):
    """The layout of the reference tutorial's published checkpoints (Lightning 1.0.2)."""
    return {
        "epoch": 171,
        "global_step": 60021,
        "pytorch-lightning_version": "1.0.2",
        "state_dict": collections.OrderedDict((f"model.{k}", v) for k, v in sd.items()),
        "hparams_name": "kwargs",
        "hyper_parameters": {"model_name": "ResNet",
                             "model_hparams": {"num_classes": 10, "c_hidden": [16, 32, 64],
                                               "num_blocks": [3, 3, 3], "act_fn_name": "relu",
                                               "block_name": "PreActResNetBlock"},
                             "optimizer_name": "SGD",
                             "optimizer_hparams": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}},
    }


def tutorial(directory, images):
    files = {"ResNet": "resnet", "ResNetPreAct": "resnet_preact", "GoogleNet": "googlenet", "DenseNet": "densenet"}
    expected = {}
    for stem, name in files.items():
        checkpoint = torch.load(pathlib.Path(directory) / f"{stem}.ckpt", map_location="cpu", weights_only=False)
        model = build(name)
        model.load_state_dict({k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()})
        expected[f"{stem}.ckpt"] = {"model": name, "logits": logits(model.eval(), images)}
    (OUT / "tutorial_expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tutorial", help="folder with the tutorial's ResNet.ckpt, ResNetPreAct.ckpt, ...")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(42)
    # Multiples of 1/64: exact in float32 and short in JSON.
    images = (torch.randn(NUM_IMAGES, 3, 32, 32, generator=generator) * 64).round() / 64
    expected = {"images": {"shape": list(images.shape), "data": images.flatten().tolist()}, "files": {}}

    def record(file, name, model, params=None):
        expected["files"][file] = {"model": name, "params": params or {}, "logits": logits(model, images)}
        print(f"{file}: {(OUT / file).stat().st_size} bytes")

    # The four models at full size, float16 on disk.
    for seed, (name, file) in enumerate([("googlenet", "googlenet.safetensors"), ("resnet", "resnet.ckpt"),
                                         ("resnet_preact", "resnet_preact.ckpt"), ("densenet", "densenet.pt")]):
        torch.manual_seed(seed)  # the reference's own initialisation draws from the global generator
        model = randomize(build(name), generator)
        round_to_half(model)
        sd = state_dict(model, torch.float16)
        if file.endswith(".safetensors"):
            save_file({k: v.contiguous() for k, v in sd.items()}, str(OUT / file))
        elif name == "resnet":
            torch.save(lightning_v2(model, sd, step_optimizer=False, generator=generator), OUT / file)
        elif name == "resnet_preact":
            torch.save(lightning_v1(sd), OUT / file, _use_new_zipfile_serialization=False)
        else:
            torch.save(sd, OUT / file)
        record(file, name, model)

    # A small ResNet in float32, in every format.
    torch.manual_seed(7)
    tiny = randomize(ResNet(10, num_blocks=TINY["num_blocks"], c_hidden=TINY["channels"]), generator)
    sd = state_dict(tiny, torch.float32)
    torch.save(sd, OUT / "tiny_resnet.pt")
    record("tiny_resnet.pt", "resnet", tiny, TINY)
    torch.save(sd, OUT / "tiny_resnet_legacy.pt", _use_new_zipfile_serialization=False)
    record("tiny_resnet_legacy.pt", "resnet", tiny, TINY)
    save_file(dict(sd), str(OUT / "tiny_resnet.safetensors"))
    record("tiny_resnet.safetensors", "resnet", tiny, TINY)
    torch.save(lightning_v2(tiny, sd, step_optimizer=True, generator=generator), OUT / "tiny_resnet.ckpt")
    record("tiny_resnet.ckpt", "resnet", tiny, TINY)
    torch.save(tiny, OUT / "tiny_resnet_module.pt")
    record("tiny_resnet_module.pt", "resnet", tiny, TINY)
    # torchvision's reference training scripts: the DistributedDataParallel-wrapped state dict
    # under "model", beside the optimizer state and the parsed arguments.
    torch.save({"model": collections.OrderedDict((f"module.{k}", v) for k, v in sd.items()),
                "optimizer": torch.optim.SGD(tiny.parameters(), lr=0.1, momentum=0.9).state_dict(),
                "epoch": 89, "args": argparse.Namespace(model="resnet", lr=0.1)},
               OUT / "tiny_resnet_wrapped.pth")
    record("tiny_resnet_wrapped.pth", "resnet", tiny, TINY)

    # Broken files: the errors must name what is wrong.
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    save_file({k: v for k, v in sd.items() if k not in keys[:12]}, str(OUT / "tiny_resnet_missing.safetensors"))
    extra = {"head.fc.weight": torch.zeros(2, 2), "blocks.9.net.0.weight": torch.zeros(4, 4, 3, 3),
             "output_net.3.bias": torch.zeros(10)}
    save_file({**sd, **extra}, str(OUT / "tiny_resnet_unexpected.safetensors"))
    wrong = dict(sd)
    wrong["output_net.2.weight"] = torch.zeros(16, 10)  # transposed
    wrong["blocks.1.net.0.weight"] = torch.zeros(8, 4, 5, 5)  # 5x5 instead of 3x3
    save_file(wrong, str(OUT / "tiny_resnet_shapes.safetensors"))

    (OUT / "expected.json").write_text(json.dumps(expected) + "\n")
    if args.tutorial:
        tutorial(args.tutorial, images)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
