//! How the reference's and torchvision's `state_dict` names map onto the burn parameter paths of
//! the building blocks; each family file maps its own module names with these.

/// PyTorch's BatchNorm2d tensor names in burn's `BatchNorm`; `num_batches_tracked` has no
/// counterpart (burn's momentum update does not use it).
pub fn torch_bn_leaf(leaf: &str) -> Option<&'static str> {
    Some(match leaf {
        "weight" => "gamma",
        "bias" => "beta",
        "running_mean" => "running_mean",
        "running_var" => "running_var",
        _ => return None,
    })
}

/// The burn leaf name of a reference tensor inside a module named `bn*` (batch norm) or a
/// bias-free convolution.
pub fn torch_leaf<'a>(module: &str, leaf: &'a str) -> Option<&'a str> {
    if module.starts_with("bn") {
        torch_bn_leaf(leaf)
    } else {
        (leaf == "weight").then_some(leaf)
    }
}

/// The burn path of a tensor of a torchvision `Conv2dNormActivation` (or any conv-then-BN
/// sequential) at `prefix`: `0.weight` -> `conv.weight`, `1.weight` -> `bn.gamma`, ...
pub fn conv_norm_key(prefix: &str, index: &str, leaf: &str) -> Option<String> {
    match index {
        "0" => conv_leaf(leaf).map(|leaf| format!("{prefix}.conv.{leaf}")),
        "1" => torch_bn_leaf(leaf).map(|leaf| format!("{prefix}.bn.{leaf}")),
        _ => None,
    }
}

/// A convolution's or linear layer's own tensors keep their names.
pub fn conv_leaf(leaf: &str) -> Option<&str> {
    matches!(leaf, "weight" | "bias").then_some(leaf)
}

/// The burn path of a tensor inside a torchvision `BasicConv2d` (`conv`, `bn`) at `prefix`.
pub fn basic_conv_key(prefix: &str, module: &str, leaf: &str) -> Option<String> {
    match module {
        "conv" => (leaf == "weight").then(|| format!("{prefix}.conv.weight")),
        "bn" => torch_bn_leaf(leaf).map(|leaf| format!("{prefix}.bn.{leaf}")),
        _ => None,
    }
}

/// The path inside an inverted residual of torchvision's `block.{j}.{sub}.{leaf}`, where `units`
/// names the block's entries: `se` has `fc1`/`fc2` convolutions, the others are conv-BN units.
pub fn se_or_unit_key(units: &[&str], j: &str, sub: &str, leaf: &str) -> Option<String> {
    let name = *units.get(j.parse::<usize>().ok()?)?;
    if name == "se" {
        matches!(sub, "fc1" | "fc2").then(|| Some(format!("se.{sub}.{}", conv_leaf(leaf)?)))?
    } else {
        conv_norm_key(name, sub, leaf)
    }
}

/// The module at `index` of the reference's `nn.Sequential(BN, act, conv, BN, act, conv)` (its
/// indices count the activations): the `net` of a pre-activation ResNet block and of a CIFAR
/// dense layer.
pub fn preact_sequential(index: &str) -> Option<&'static str> {
    Some(match index {
        "0" => "bn1",
        "2" => "conv1",
        "3" => "bn2",
        "5" => "conv2",
        _ => return None,
    })
}
