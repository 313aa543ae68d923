"""PyTorch's side of `cargo bench -p cnnzoo-flex-kernels --bench layer_speed`: the same
layers, shapes and protocol (one untimed call, then the mean of 10; every backward starts from
`y.sum().backward()`), on the CPU with `--threads` threads (default 2).

    scripts/python_env.sh torch -- scripts/layer_speed_pytorch.py --threads 2

scripts/python_env.sh makes the git-ignored venv .venv-scripts/ with the packages named on first
use; set $PYTHON to run on another Python that has them instead (nothing is installed into it).
"""
import argparse
import time

import torch
from torch import nn

REPEATS = 10


def timed(name, shape, f):
    f()
    started = time.perf_counter()
    for _ in range(REPEATS):
        f()
    print(f"| {shape} | {name} | {(time.perf_counter() - started) * 1e3 / REPEATS:.1f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("| input | operation | ms |\n| --- | --- | ---: |")
    for n, c, side in [(128, 16, 32), (128, 32, 16), (128, 64, 8)]:
        shape = f"{n}x{c}x{side}x{side}"
        x = (torch.randn(n, c, side, side) + 0.5).requires_grad_()
        conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        bn = nn.BatchNorm2d(c)

        def backward(y):
            x.grad = None
            y.sum().backward()

        def conv_forward():
            with torch.no_grad():
                conv(x)

        timed("sum + backward alone", shape, lambda: backward(x * 1.0))
        timed("conv 3x3 forward", shape, conv_forward)
        timed("conv 3x3 forward + backward", shape, lambda: backward(conv(x)))
        grad = torch.randn(n, c, side, side)

        def conv_gradient(mask):
            torch.ops.aten.convolution_backward(
                grad, x.detach(), conv.weight.detach(), None, [1, 1], [1, 1], [1, 1], False,
                [0, 0], 1, mask)

        timed("conv 3x3 input gradient", shape, lambda: conv_gradient([True, False, False]))
        timed("conv 3x3 weight gradient", shape, lambda: conv_gradient([False, True, False]))
        timed("max pool 3x3 stride 1 forward + backward", shape, lambda: backward(pool(x)))
        timed("MaxPool2d 3x3 stride 1 forward + backward", shape, lambda: backward(pool(x)))
        timed("BatchNorm2d train forward + backward", shape, lambda: backward(bn(x)))
        bn.eval()
        with torch.no_grad():
            timed("BatchNorm2d eval forward", shape, lambda: bn(x))
    googlenet_pools()


def googlenet_pools():
    """The example's `googlenet_pools`: inputs clamped at zero, as after a ReLU."""
    for n, c, side, stride in [(128, 192, 32, 1), (128, 480, 16, 1), (128, 832, 8, 1), (128, 480, 32, 2)]:
        shape = f"{n}x{c}x{side}x{side}"
        x = (torch.randn(n, c, side, side) + 0.5).clamp_min(0.0).requires_grad_()
        pool = nn.MaxPool2d(3, stride=stride, padding=1)

        def forward():
            with torch.no_grad():
                pool(x)

        def forward_backward():
            x.grad = None
            pool(x).sum().backward()

        timed(f"MaxPool2d 3x3 stride {stride} forward", shape, forward)
        timed(f"MaxPool2d 3x3 stride {stride} forward + backward", shape, forward_backward)


if __name__ == "__main__":
    main()
