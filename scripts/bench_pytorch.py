"""PyTorch's side of `cnnzoo bench`: the same protocol on the reference models of SPEC §1.

    scripts/python_env.sh torch -- scripts/bench_pytorch.py --model resnet --batch 128 --steps 10 --threads 2
    scripts/python_env.sh torch -- scripts/bench_pytorch.py --model all --json

CPU wheels of torch are enough. scripts/python_env.sh makes the git-ignored venv .venv-scripts/
with the packages named on first use; set $PYTHON to run on another Python that has them instead
(nothing is installed into it). scripts/bench_vs_pytorch.sh runs this script beside `cnnzoo bench`.

Protocol, step for step as `cnnzoo bench`:
- random standard-normal images [B, 3, 32, 32] and labels cycling through the 10 classes, made
  once and reused (the data loader is measured apart);
- training step: forward, cross-entropy, backward, optimizer step (zero_grad first, set_to_none);
  the optimizer is the model's recipe of SPEC §2 (SGD momentum 0.9 + weight decay 1e-4 at lr 0.1
  for the ResNets, AdamW lr 1e-3 weight decay 1e-4 for GoogleNet and DenseNet), as cnnzoo's
  shipped configs; --optimizer sgd forces SGD with momentum for every model;
- `--warmup` untimed steps, then `--steps` timed ones; the clock stops after the last loss is read
  back (`.item()`), which also synchronises a CUDA device;
- inference: eval mode, `torch.no_grad()`, batch `--infer-batch` (256), same warm-up and steps;
- peak RSS from /proc/self/status VmHWM, reset per model through /proc/self/clear_refs.
PyTorch's default NCHW layout (no channels_last), float32, eager mode (--compile: torch.compile,
whose compilation falls in the warm-up steps), `torch.set_num_threads`.
Prints one line per model, or with --json one JSON object per line with the fields of
`cnnzoo bench --json`.
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import build  # noqa: E402

MODELS = ["googlenet", "resnet", "resnet_preact", "densenet"]
SGD_MODELS = {"resnet", "resnet_preact"}


def optimizer_for(name, model, forced):
    kind = forced or ("sgd" if name in SGD_MODELS else "adamw")
    if kind == "sgd":
        return kind, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    return kind, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)


def random_batch(size, device):
    images = torch.randn(size, 3, 32, 32, device=device)
    labels = (torch.arange(size, device=device) % 10).long()
    return images, labels


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def bench(name, args, device):
    reset_peak_rss()
    torch.manual_seed(42)
    model = build(name).to(device)
    kind, optimizer = optimizer_for(name, model, args.optimizer)
    if args.compile:
        model = torch.compile(model)
    loss_fn = nn.CrossEntropyLoss()
    images, labels = random_batch(args.batch, device)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    model.train()
    for _ in range(args.warmup):
        train_step().item()
    started = time.perf_counter()
    for _ in range(args.steps):
        loss = train_step()
    final_loss = loss.item()
    train_time = time.perf_counter() - started

    model.eval()
    images, labels = random_batch(args.infer_batch, device)
    with torch.no_grad():
        for _ in range(args.warmup):
            loss_fn(model(images), labels).item()
        started = time.perf_counter()
        for _ in range(args.steps):
            loss = loss_fn(model(images), labels)
        loss.item()
        infer_time = time.perf_counter() - started

    return {
        "model": name,
        "device": str(device),
        "framework": f"pytorch {torch.__version__}" + (" compile" if args.compile else ""),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "batch": args.batch,
        "infer_batch": args.infer_batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "optimizer": kind,
        "train_img_s": args.batch * args.steps / train_time,
        "train_step_ms": train_time * 1e3 / args.steps,
        "infer_img_s": args.infer_batch * args.steps / infer_time,
        "peak_rss_mb": peak_rss_mb(),
        "final_loss": final_loss,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all", choices=MODELS + ["all"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--infer-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], help="override the recipe's optimizer")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (default mode) before the warm-up steps")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.batch < 1 or args.infer_batch < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--batch, --infer-batch and --steps must be at least 1, --warmup at least 0")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = MODELS if args.model == "all" else [args.model]
    if not args.json:
        print(f"pytorch {torch.__version__} on {device}: batch {args.batch}, inference batch "
              f"{args.infer_batch}, {args.warmup} warm-up + {args.steps} timed steps, "
              f"{torch.get_num_threads()} threads")
    for name in names:
        r = bench(name, args, device)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            rss = "unknown" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f} MB"
            print(f"{name:<14} train {r['train_img_s']:8.1f} img/s ({r['train_step_ms']:.0f} ms/step)  "
                  f"infer {r['infer_img_s']:8.1f} img/s  peak RSS {rss}", flush=True)


if __name__ == "__main__":
    main()
