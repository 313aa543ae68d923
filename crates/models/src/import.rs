//! PyTorch weights into zoo models: `torch.save` files (zip, and the legacy pre-1.6 format),
//! PyTorch Lightning checkpoints and safetensors files.
//!
//! burn-store reads the containers (its PyTorch reader for `torch.save` files, its safetensors
//! store for safetensors); this module finds the state dict inside the file, maps its keys with
//! [`ModelConfig::torch_key`] (the mapping lives with each family), checks that every parameter
//! of the model gets exactly one tensor of the right shape, and only then loads them. Anything
//! wrong is an error naming the keys, never a partial load.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::pytorch_reader::{FileFormat, PytorchReader};
use burn::store::{ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, SafetensorsStore, bridge};
use burn::tensor::{DType, Device, Tensor};

use crate::layers::{ParamPath, ParamVisitor, visit_params};
use crate::model::{Model, ModelConfig};

/// How many keys an error lists of each kind before it only counts the rest.
const LISTED: usize = 10;

/// Sub-dictionaries a checkpoint commonly keeps its weights under, looked for in this order:
/// Lightning and most training scripts (`state_dict`), the PyTorch tutorials'
/// `model_state_dict`, torchvision's reference training scripts (`model`). Tensors outside it
/// (optimizer state, callback scores) are not weights and are left alone.
const NESTS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// The container a weights file came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// `torch.save` since PyTorch 1.6: a zip archive.
    TorchZip,
    /// `torch.save` before PyTorch 1.6 (or with `_use_new_zipfile_serialization=False`).
    TorchLegacy,
    /// `torch.save` before PyTorch 0.1.10: a tar archive.
    TorchTar,
    /// A bare pickle.
    Pickle,
    Safetensors,
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TorchZip => "PyTorch zip (torch.save, PyTorch >= 1.6)",
            Self::TorchLegacy => "PyTorch legacy (torch.save, PyTorch < 1.6)",
            Self::TorchTar => "PyTorch tar (torch.save, PyTorch < 0.1.10)",
            Self::Pickle => "pickle",
            Self::Safetensors => "safetensors",
        })
    }
}

/// A tensor of the file whose shape is not the one the model needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The key in the file.
    pub key: String,
    pub found: Vec<usize>,
    /// In PyTorch's layout (a linear weight is `[out, in]`), to compare with `found`.
    pub expected: Vec<usize>,
}

#[derive(Debug)]
pub enum ImportError {
    /// The file cannot be opened or read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not in a format burn-store reads, or is damaged.
    Read { path: PathBuf, message: String },
    /// The file holds no tensors where weights were looked for.
    NoTensors { path: PathBuf, container: Container },
    /// A tensor holds integers or booleans where the model needs floats.
    NotFloat {
        path: PathBuf,
        key: String,
        dtype: String,
    },
    /// The keys or shapes of the file do not match the model.
    Mismatch {
        path: PathBuf,
        /// Parameters of the model (cnnzoo paths) no tensor of the file maps to, with their
        /// shape in PyTorch's layout.
        missing: Vec<(String, Vec<usize>)>,
        /// Keys of the file that map to no parameter of the model.
        unexpected: Vec<String>,
        shapes: Vec<ShapeMismatch>,
    },
    /// burn-store refused a tensor that passed every check here.
    Apply { path: PathBuf, message: String },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Read { path, message } => write!(
                f,
                "{}: not a readable PyTorch (.pt, .pth, .ckpt) or safetensors file: {message}",
                path.display()
            ),
            Self::NoTensors { path, container } => write!(
                f,
                "{}: the {container} file holds no tensors to import",
                path.display()
            ),
            Self::NotFloat { path, key, dtype } => write!(
                f,
                "{}: tensor '{key}' holds {dtype} values, the model needs floating point",
                path.display()
            ),
            Self::Mismatch {
                path,
                missing,
                unexpected,
                shapes,
            } => {
                write!(f, "{}: the weights do not fit the model", path.display())?;
                if !missing.is_empty() {
                    let items = missing
                        .iter()
                        .map(|(p, s)| format!("{p} {s:?}"))
                        .collect::<Vec<_>>();
                    write!(
                        f,
                        "\n  {} parameter(s) of the model that no tensor in the file maps to (cnnzoo names): {}",
                        missing.len(),
                        listing(&items)
                    )?;
                }
                if !unexpected.is_empty() {
                    write!(
                        f,
                        "\n  {} key(s) in the file that are not weights of this model: {}",
                        unexpected.len(),
                        listing(unexpected)
                    )?;
                }
                if !shapes.is_empty() {
                    let items = shapes
                        .iter()
                        .map(|m| format!("{} is {:?}, expected {:?}", m.key, m.found, m.expected))
                        .collect::<Vec<_>>();
                    write!(
                        f,
                        "\n  {} shape mismatch(es): {}",
                        shapes.len(),
                        listing(&items)
                    )?;
                }
                Ok(())
            }
            Self::Apply { path, message } => {
                write!(f, "{}: cannot load the weights: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The first [`LISTED`] items, then how many more there are.
fn listing<S: AsRef<str>>(items: &[S]) -> String {
    let shown: Vec<&str> = items.iter().take(LISTED).map(AsRef::as_ref).collect();
    let mut text = shown.join(", ");
    if items.len() > LISTED {
        text.push_str(&format!(", and {} more", items.len() - LISTED));
    }
    text
}

/// The tensors of a weights file, with the keys they had in the file and the keys of the
/// state dict they were found in.
pub struct TorchWeights {
    pub path: PathBuf,
    pub container: Container,
    /// The sub-dictionary the weights were found under (`state_dict` in a Lightning checkpoint).
    pub nested_under: Option<String>,
    /// The prefix every key carried and which was dropped (`model.` in a Lightning checkpoint).
    pub stripped_prefix: Option<String>,
    /// Keys ending in `num_batches_tracked`: BatchNorm's step counter, which burn does not keep.
    pub ignored: Vec<String>,
    /// (state-dict key, tensor named by its key in the file), sorted by key.
    tensors: Vec<(String, PackTensor)>,
}

impl fmt::Debug for TorchWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorchWeights")
            .field("path", &self.path)
            .field("container", &self.container)
            .field("nested_under", &self.nested_under)
            .field("stripped_prefix", &self.stripped_prefix)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Reads `path` and loads its weights into a new model of `config`: see [`TorchWeights`].
pub fn load_torch_weights(
    path: &Path,
    config: &ModelConfig,
    device: &Device,
) -> Result<Model, ImportError> {
    TorchWeights::read(path, config)?.into_model(config, device)
}

impl TorchWeights {
    /// Reads the tensors of a `torch.save` file (`.pt`, `.pth`, Lightning `.ckpt`) or a
    /// safetensors file; the format is recognised from the content, not the extension.
    /// `config` only decides, where a prefix could be dropped or kept, which reading maps more
    /// keys onto the model.
    pub fn read(path: &Path, config: &ModelConfig) -> Result<Self, ImportError> {
        let io = |source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let read_error = |message: String| ImportError::Read {
            path: path.to_path_buf(),
            message,
        };
        if std::fs::metadata(path).map_err(io)?.is_dir() {
            return Err(io(std::io::Error::other("is a folder, not a weights file")));
        }
        let (container, all) = if is_safetensors(path).map_err(io)? {
            let mut store = SafetensorsStore::from_file(path);
            let tensors = store
                .get_all_tensors()
                .map_err(|e| read_error(e.to_string()))?;
            (Container::Safetensors, tensors.clone())
        } else {
            let reader =
                PytorchReader::new(path).map_err(|e| read_error(pickle_hint(e.to_string())))?;
            let container = match reader.metadata().format_type {
                FileFormat::Zip => Container::TorchZip,
                FileFormat::Legacy => Container::TorchLegacy,
                FileFormat::Tar => Container::TorchTar,
                FileFormat::Pickle => Container::Pickle,
            };
            let tensors = reader
                .into_tensors()
                .into_iter()
                .map(|(key, tensor)| (key, bridge::from_pytorch(tensor)))
                .collect();
            (container, tensors)
        };
        if all.is_empty() {
            return Err(ImportError::NoTensors {
                path: path.to_path_buf(),
                container,
            });
        }

        let nested_under = NESTS
            .iter()
            .find(|nest| all.keys().any(|k| k.starts_with(&format!("{nest}."))))
            .map(|nest| nest.to_string());
        let mut entries: Vec<(String, PackTensor)> = match &nested_under {
            Some(nest) => all
                .into_iter()
                .filter_map(|(k, t)| Some((k.strip_prefix(&format!("{nest}."))?.to_string(), t)))
                .collect(),
            None => all.into_iter().collect(),
        };

        // A wrapper's name shared by every key (Lightning keeps the network as `self.model`,
        // `nn.DataParallel` as `module`) is dropped, one level at a time, wherever that maps
        // more keys onto the model; a file that already fits keeps its keys.
        let mapped = |prefix: &str| {
            entries
                .iter()
                .filter(|(k, _)| config.torch_key(&k[prefix.len()..]).is_some())
                .count()
        };
        let mut prefix = String::new();
        while let Some(next) = shared_first_component(&entries, &prefix)
            && mapped(&next) > mapped(&prefix)
        {
            prefix = next;
        }
        for (key, _) in &mut entries {
            key.drain(..prefix.len());
        }
        let stripped_prefix = (!prefix.is_empty()).then_some(prefix);

        let (ignored, tensors): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(k, _)| k.rsplit('.').next() == Some("num_batches_tracked"));
        let mut tensors = tensors;
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut ignored: Vec<String> = ignored.into_iter().map(|(k, _)| k).collect();
        ignored.sort();
        Ok(Self {
            path: path.to_path_buf(),
            container,
            nested_under,
            stripped_prefix,
            ignored,
            tensors,
        })
    }

    /// Number of weight tensors read (without the ignored ones).
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The key a tensor had in the file, for messages.
    fn file_key(&self, key: &str) -> String {
        let prefix = self.stripped_prefix.as_deref().unwrap_or("");
        match &self.nested_under {
            Some(nest) => format!("{nest}.{prefix}{key}"),
            None => format!("{prefix}{key}"),
        }
    }

    /// Maps every tensor onto a parameter of a new model of `config`, checks keys, shapes and
    /// element types, and loads them; linear weights are transposed to burn's `[in, out]` and
    /// everything is widened or narrowed to `f32`.
    pub fn into_model(self, config: &ModelConfig, device: &Device) -> Result<Model, ImportError> {
        let mut model = config.init(device);
        let mut params = Params::default();
        visit_params(&model, &mut params);
        // Paths start with the `Model` variant; the families' mappings are relative to it.
        let variant = params
            .found
            .keys()
            .next()
            .and_then(|p| p.split('.').next())
            .unwrap_or_default()
            .to_string();

        let mut unexpected = Vec::new();
        let mut shapes = Vec::new();
        let mut claimed: BTreeMap<String, String> = BTreeMap::new();
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for (key, tensor) in &self.tensors {
            let file_key = self.file_key(key);
            let Some(path) = config
                .torch_key(key)
                .map(|p| format!("{variant}.{p}"))
                .filter(|p| params.found.contains_key(p))
            else {
                unexpected.push(file_key);
                continue;
            };
            // Two keys of the file for one parameter: the second is one too many.
            if claimed.insert(path.clone(), file_key.clone()).is_some() {
                unexpected.push(file_key);
                continue;
            }
            let expected = &params.found[&path];
            if tensor.shape.as_slice() != expected.torch_shape.as_slice() {
                shapes.push(ShapeMismatch {
                    key: file_key,
                    found: tensor.shape.to_vec(),
                    expected: expected.torch_shape.clone(),
                });
                continue;
            }
            if !tensor.dtype.is_float() {
                return Err(ImportError::NotFloat {
                    path: self.path.clone(),
                    key: file_key,
                    dtype: format!("{:?}", tensor.dtype),
                });
            }
            tensors.push(as_f32(tensor.clone(), path));
        }
        let missing: Vec<(String, Vec<usize>)> = params
            .found
            .iter()
            .filter(|(p, _)| !claimed.contains_key(*p))
            .map(|(p, info)| {
                let relative = p.strip_prefix(&format!("{variant}.")).unwrap_or(p);
                (relative.to_string(), info.torch_shape.clone())
            })
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() || !shapes.is_empty() {
            return Err(ImportError::Mismatch {
                path: self.path,
                missing,
                unexpected,
                shapes,
            });
        }

        // Paths already carry the enum variants (`blocks.0.Standard.conv1`), so none are skipped.
        let result = model.apply(tensors, None, Some(Box::new(PyTorchToBurnAdapter)), false);
        let applied: BTreeSet<&String> = result.applied.iter().collect();
        if !result.errors.is_empty() || applied.len() != params.found.len() {
            let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
            problems.extend(
                result
                    .missing
                    .iter()
                    .map(|(p, _)| format!("{p} not loaded")),
            );
            problems.extend(result.unused.iter().map(|p| format!("{p} not used")));
            return Err(ImportError::Apply {
                path: self.path,
                message: listing(&problems),
            });
        }
        Ok(model)
    }
}

/// `prefix` and the next key component, when every key (all starting with `prefix`) has that
/// same component and something after it.
fn shared_first_component(entries: &[(String, PackTensor)], prefix: &str) -> Option<String> {
    let first = |key: &str| {
        let (component, rest) = key[prefix.len()..].split_once('.')?;
        (!rest.is_empty()).then(|| component.to_string())
    };
    let component = first(&entries.first()?.0)?;
    entries
        .iter()
        .all(|(k, _)| first(k).as_ref() == Some(&component))
        .then(|| format!("{prefix}{component}."))
}

/// The tensor renamed to its parameter path, its values as `f32` (the element type the model is
/// built with); the conversion runs when the applier draws the data.
fn as_f32(tensor: PackTensor, path: String) -> PackTensor {
    let shape = tensor.shape.clone();
    if tensor.dtype == DType::F32 {
        let mut tensor = tensor;
        tensor.name = path;
        return tensor;
    }
    bridge::map_data(tensor, path, DType::F32, shape, |data| {
        data.convert_dtype(DType::F32)
    })
}

/// burn-store's PyTorch reader refuses a pickled `dict` subclass (`collections.defaultdict`,
/// Lightning's `AttributeDict`) anywhere in the file, even outside the weights; its message names
/// only an opcode, so say what it means and how to get the weights out.
fn pickle_hint(message: String) -> String {
    if message.contains("SetItem") {
        format!(
            "{message} (the file holds a Python dict subclass, such as a defaultdict or \
             Lightning's AttributeDict, which burn's PyTorch reader cannot read; save the weights \
             alone with `torch.save(checkpoint[\"state_dict\"], \"weights.pt\")`, or as safetensors, \
             and import that)"
        )
    } else {
        message
    }
}

/// Whether the file opens like a safetensors file: a little-endian `u64` header length, then
/// the JSON header's `{`.
fn is_safetensors(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut header = [0u8; 9];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..])? {
            0 => return Ok(false),
            n => filled += n,
        }
    }
    let length = u64::from_le_bytes(header[..8].try_into().unwrap_or_default());
    Ok(header[8] == b'{' && length > 1 && length < 100_000_000)
}

/// A parameter of the model: its shape as PyTorch stores it.
struct ParamInfo {
    torch_shape: Vec<usize>,
}

/// Every parameter of a module by path, with the shape PyTorch would give it: burn's `Linear`
/// keeps its weight as `[in, out]`, PyTorch's as `[out, in]` (`PyTorchToBurnAdapter` transposes
/// on load, keyed on the same container type).
#[derive(Default)]
struct Params {
    found: BTreeMap<String, ParamInfo>,
}

impl ParamVisitor for Params {
    fn visit<const D: usize>(&mut self, path: &ParamPath, param: &Param<Tensor<D>>) {
        let mut torch_shape = param.lazy_shape().to_vec();
        if path.owner() == Some("Struct:Linear") && path.leaf() == "weight" && D == 2 {
            torch_shape.reverse();
        }
        self.found.insert(path.joined(), ParamInfo { torch_shape });
    }
}
