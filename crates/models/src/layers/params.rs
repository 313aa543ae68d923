//! Walking a module's float parameters with their paths, for counting them, mapping them onto
//! PyTorch's names and checking them in tests.
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// Where a parameter sits in a module tree: the names burn's records join with dots
/// (`blocks.0.Standard.conv1.weight`), and the container type of each level (`Struct:Linear`).
#[derive(Debug, Default)]
pub struct ParamPath {
    names: Vec<String>,
    containers: Vec<String>,
}

impl ParamPath {
    /// The path as burn's records name the parameter.
    pub fn joined(&self) -> String {
        self.names.join(".")
    }

    /// The path without its first `levels` names: without the [`crate::Model`] variant, the path
    /// relative to the family's network.
    pub fn joined_after(&self, levels: usize) -> String {
        self.names[levels.min(self.names.len())..].join(".")
    }

    /// The parameter's own name (`weight`, `running_mean`).
    pub fn leaf(&self) -> &str {
        self.names.last().map_or("", String::as_str)
    }

    /// Batch norm's running mean and variance: buffers, not trained, and not among PyTorch's
    /// `parameters()`.
    pub fn is_running_statistic(&self) -> bool {
        matches!(self.leaf(), "running_mean" | "running_var")
    }

    /// The innermost struct or enum holding the parameter (`Struct:Linear`).
    pub fn owner(&self) -> Option<&str> {
        self.containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"))
            .map(String::as_str)
    }
}

/// What [`visit_params`] calls for each float parameter.
pub trait ParamVisitor {
    fn visit<const D: usize>(&mut self, path: &ParamPath, param: &Param<Tensor<D>>);
}

/// Calls `visitor` with every float parameter of `module` and its path.
pub fn visit_params<M: Module, V: ParamVisitor>(module: &M, visitor: &mut V) {
    struct Tracker<'a, V> {
        path: ParamPath,
        visitor: &'a mut V,
    }
    impl<V: ParamVisitor> ModuleVisitor for Tracker<'_, V> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.names.push(name.to_string());
            self.path.containers.push(container_type.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.names.pop();
            self.path.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.visitor.visit(&self.path, param);
        }
    }
    module.visit(&mut Tracker {
        path: ParamPath::default(),
        visitor,
    });
}

/// Counts trainable weights and biases the way PyTorch's `sum(p.numel() for p in parameters())`
/// does: burn's `num_params` also counts batch-norm running statistics, which are buffers.
pub fn count_trainable_params<M: Module>(module: &M) -> usize {
    struct Counter(usize);
    impl ParamVisitor for Counter {
        fn visit<const D: usize>(&mut self, path: &ParamPath, param: &Param<Tensor<D>>) {
            // `lazy_shape` leaves a lazily initialised parameter uninitialised: counting VGG's
            // 138M weights must not draw them.
            if !path.is_running_statistic() {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut counter = Counter(0);
    visit_params(module, &mut counter);
    counter.0
}
