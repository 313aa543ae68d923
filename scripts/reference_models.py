"""The four CIFAR-10 reference architectures of SPEC §1 in PyTorch, with the reference's module
names, so that their state_dicts have the keys cnnzoo's importer maps (input_net.0.weight,
blocks.3.net.0.weight, inception_blocks.8.conv_5x5.3.weight, ...).

Used by the scripts that make parity fixtures and benchmark PyTorch side by side; never by cnnzoo
itself. Needs torch, which those scripts get from scripts/python_env.sh.
"""
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
GAIN_NAMES = {"relu": "relu", "leakyrelu": "leaky_relu", "tanh": "tanh", "gelu": "relu"}


class InceptionBlock(nn.Module):
    def __init__(self, c_in, c_red, c_out, act_fn):
        super().__init__()
        self.conv_1x1 = nn.Sequential(nn.Conv2d(c_in, c_out["1x1"], 1), nn.BatchNorm2d(c_out["1x1"]), act_fn())
        self.conv_3x3 = nn.Sequential(
            nn.Conv2d(c_in, c_red["3x3"], 1), nn.BatchNorm2d(c_red["3x3"]), act_fn(),
            nn.Conv2d(c_red["3x3"], c_out["3x3"], 3, padding=1), nn.BatchNorm2d(c_out["3x3"]), act_fn())
        self.conv_5x5 = nn.Sequential(
            nn.Conv2d(c_in, c_red["5x5"], 1), nn.BatchNorm2d(c_red["5x5"]), act_fn(),
            nn.Conv2d(c_red["5x5"], c_out["5x5"], 5, padding=2), nn.BatchNorm2d(c_out["5x5"]), act_fn())
        self.max_pool = nn.Sequential(
            nn.MaxPool2d(3, padding=1, stride=1), nn.Conv2d(c_in, c_out["max"], 1),
            nn.BatchNorm2d(c_out["max"]), act_fn())

    def forward(self, x):
        return torch.cat([self.conv_1x1(x), self.conv_3x3(x), self.conv_5x5(x), self.max_pool(x)], dim=1)


def _inception(c_in, r3, r5, o1, o3, o5, op, act_fn):
    return InceptionBlock(c_in, {"3x3": r3, "5x5": r5}, {"1x1": o1, "3x3": o3, "5x5": o5, "max": op}, act_fn)


class GoogleNet(nn.Module):
    def __init__(self, num_classes=10, act="relu"):
        super().__init__()
        a = ACTIVATIONS[act]
        self.input_net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), a())
        self.inception_blocks = nn.Sequential(
            _inception(64, 32, 16, 16, 32, 8, 8, a), _inception(64, 32, 16, 24, 48, 12, 12, a),
            nn.MaxPool2d(3, stride=2, padding=1),
            _inception(96, 32, 16, 24, 48, 12, 12, a), _inception(96, 32, 16, 16, 48, 16, 16, a),
            _inception(96, 32, 16, 16, 48, 16, 16, a), _inception(96, 32, 16, 32, 48, 24, 24, a),
            nn.MaxPool2d(3, stride=2, padding=1),
            _inception(128, 48, 16, 32, 64, 16, 16, a), _inception(128, 48, 16, 32, 64, 16, 16, a))
        self.output_net = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(128, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity=GAIN_NAMES[act])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.output_net(self.inception_blocks(self.input_net(x)))


class ResNetBlock(nn.Module):
    def __init__(self, c_in, act_fn, subsample=False, c_out=-1):
        super().__init__()
        if not subsample:
            c_out = c_in
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, stride=2 if subsample else 1, bias=False),
            nn.BatchNorm2d(c_out), act_fn(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.downsample = nn.Conv2d(c_in, c_out, 1, stride=2) if subsample else None
        self.act_fn = act_fn()

    def forward(self, x):
        z = self.net(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return self.act_fn(z + x)


class PreActResNetBlock(nn.Module):
    def __init__(self, c_in, act_fn, subsample=False, c_out=-1):
        super().__init__()
        if not subsample:
            c_out = c_in
        self.net = nn.Sequential(
            nn.BatchNorm2d(c_in), act_fn(),
            nn.Conv2d(c_in, c_out, 3, padding=1, stride=2 if subsample else 1, bias=False),
            nn.BatchNorm2d(c_out), act_fn(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False))
        self.downsample = nn.Sequential(
            nn.BatchNorm2d(c_in), act_fn(), nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)) if subsample else None

    def forward(self, x):
        z = self.net(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return z + x


class ResNet(nn.Module):
    def __init__(self, num_classes=10, act="relu", preact=False, num_blocks=(3, 3, 3), c_hidden=(16, 32, 64)):
        super().__init__()
        a = ACTIVATIONS[act]
        block_class = PreActResNetBlock if preact else ResNetBlock
        if preact:
            self.input_net = nn.Sequential(nn.Conv2d(3, c_hidden[0], 3, padding=1, bias=False))
        else:
            self.input_net = nn.Sequential(nn.Conv2d(3, c_hidden[0], 3, padding=1, bias=False), nn.BatchNorm2d(c_hidden[0]), a())
        blocks = []
        for block_idx, block_count in enumerate(num_blocks):
            for bc in range(block_count):
                subsample = bc == 0 and block_idx > 0
                blocks.append(block_class(c_hidden[block_idx if not subsample else block_idx - 1], a, subsample, c_hidden[block_idx]))
        self.blocks = nn.Sequential(*blocks)
        self.output_net = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c_hidden[-1], num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity=GAIN_NAMES[act])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.output_net(self.blocks(self.input_net(x)))


class DenseLayer(nn.Module):
    def __init__(self, c_in, bn_size, growth_rate, act_fn):
        super().__init__()
        self.net = nn.Sequential(
            nn.BatchNorm2d(c_in), act_fn(), nn.Conv2d(c_in, bn_size * growth_rate, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth_rate), act_fn(),
            nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat([self.net(x), x], dim=1)


class DenseBlock(nn.Module):
    def __init__(self, c_in, num_layers, bn_size, growth_rate, act_fn):
        super().__init__()
        self.block = nn.Sequential(*[DenseLayer(c_in + i * growth_rate, bn_size, growth_rate, act_fn) for i in range(num_layers)])

    def forward(self, x):
        return self.block(x)


class TransitionLayer(nn.Module):
    def __init__(self, c_in, c_out, act_fn):
        super().__init__()
        self.transition = nn.Sequential(nn.BatchNorm2d(c_in), act_fn(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.AvgPool2d(2, stride=2))

    def forward(self, x):
        return self.transition(x)


class DenseNet(nn.Module):
    def __init__(self, num_classes=10, act="relu", num_layers=(6, 6, 6, 6), bn_size=2, growth_rate=16):
        super().__init__()
        a = ACTIVATIONS[act]
        c_hidden = growth_rate * bn_size
        self.input_net = nn.Sequential(nn.Conv2d(3, c_hidden, 3, padding=1))
        blocks = []
        for block_idx, n in enumerate(num_layers):
            blocks.append(DenseBlock(c_hidden, n, bn_size, growth_rate, a))
            c_hidden = c_hidden + n * growth_rate
            if block_idx < len(num_layers) - 1:
                blocks.append(TransitionLayer(c_hidden, c_hidden // 2, a))
                c_hidden = c_hidden // 2
        self.blocks = nn.Sequential(*blocks)
        self.output_net = nn.Sequential(nn.BatchNorm2d(c_hidden), a(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c_hidden, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity=GAIN_NAMES[act])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.output_net(self.blocks(self.input_net(x)))


def build(name, num_classes=10):
    """The reference model registered in cnnzoo under `name`."""
    return {
        "googlenet": lambda: GoogleNet(num_classes),
        "resnet": lambda: ResNet(num_classes),
        "resnet_preact": lambda: ResNet(num_classes, preact=True),
        "densenet": lambda: DenseNet(num_classes),
    }[name]()


if __name__ == "__main__":
    for name in ["googlenet", "resnet", "resnet_preact", "densenet"]:
        model = build(name)
        print(name, sum(p.numel() for p in model.parameters()))
