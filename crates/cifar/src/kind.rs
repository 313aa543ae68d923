//! The two data sets and where their files live.

/// Which CIFAR data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifarKind {
    /// CIFAR-10: 10 classes, 5 training batches and a test batch.
    Cifar10,
    /// CIFAR-100 with its 100 fine labels.
    Cifar100,
    /// CIFAR-100 with its 20 coarse labels (the super-classes): the same files, the other label.
    Cifar100Coarse,
}

const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// The 20 super-classes of CIFAR-100, in the order of its meta file's `coarse_label_names`.
const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// One official archive of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    /// Its file name.
    pub file: &'static str,
    /// The folder it holds its files in.
    pub folder: &'static str,
    /// Where it is published.
    pub url: &'static str,
    /// Its md5.
    pub md5: &'static str,
}

const CIFAR10_ARCHIVES: [Archive; 2] = [
    Archive {
        file: "cifar-10-binary.tar.gz",
        folder: "cifar-10-batches-bin",
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
    },
    Archive {
        file: "cifar-10-python.tar.gz",
        folder: "cifar-10-batches-py",
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5: "c58f30108f718f92721af3b95e74349a",
    },
];

const CIFAR100_ARCHIVES: [Archive; 2] = [
    Archive {
        file: "cifar-100-binary.tar.gz",
        folder: "cifar-100-binary",
        url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        md5: "03b5dce01913d631647c71ecec9e9cb8",
    },
    Archive {
        file: "cifar-100-python.tar.gz",
        folder: "cifar-100-python",
        url: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5: "eb9058c3a382ffc7106e4002c42a8d85",
    },
];

impl CifarKind {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cifar10 => "CIFAR-10",
            Self::Cifar100 | Self::Cifar100Coarse => "CIFAR-100",
        }
    }

    /// Number of classes (100 fine or 20 coarse ones for CIFAR-100).
    pub fn num_classes(self) -> usize {
        self.default_classes().len()
    }

    /// The class names in label order, as the official meta files list them.
    pub fn default_classes(self) -> &'static [&'static str] {
        match self {
            Self::Cifar10 => &CIFAR10_CLASSES,
            Self::Cifar100 => &CIFAR100_CLASSES,
            Self::Cifar100Coarse => &CIFAR100_COARSE_CLASSES,
        }
    }

    /// The official binary archive: the folder it holds its files in (an extracted copy has it
    /// too), its file name, where it is published and its md5 as published next to it.
    pub fn binary(self) -> &'static Archive {
        &self.archives()[0]
    }

    /// The official python archive: the folder it holds its files in (what torchvision leaves
    /// behind when it extracts it), its file name, where it is published (what a missing
    /// CIFAR-100 is downloaded from, as torchvision does) and its md5 (the one torchvision
    /// checks).
    pub fn python(self) -> &'static Archive {
        &self.archives()[1]
    }

    fn archives(self) -> &'static [Archive; 2] {
        match self {
            Self::Cifar10 => &CIFAR10_ARCHIVES,
            Self::Cifar100 | Self::Cifar100Coarse => &CIFAR100_ARCHIVES,
        }
    }

    /// Training and test batch files of the binary format, relative to [`Self::binary`]'s folder.
    pub(crate) fn binary_batches(self) -> (Vec<&'static str>, &'static str) {
        match self {
            Self::Cifar10 => (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "test_batch.bin",
            ),
            Self::Cifar100 | Self::Cifar100Coarse => (vec!["train.bin"], "test.bin"),
        }
    }

    /// Training and test batch files of the python format, relative to [`Self::python`]'s folder.
    pub(crate) fn python_batches(self) -> (Vec<&'static str>, &'static str) {
        match self {
            Self::Cifar10 => (
                vec![
                    "data_batch_1",
                    "data_batch_2",
                    "data_batch_3",
                    "data_batch_4",
                    "data_batch_5",
                ],
                "test_batch",
            ),
            Self::Cifar100 | Self::Cifar100Coarse => (vec!["train"], "test"),
        }
    }

    /// The class-name list of the binary format (one name a line).
    pub(crate) fn binary_class_names_file(self) -> &'static str {
        match self {
            Self::Cifar10 => "batches.meta.txt",
            Self::Cifar100 => "fine_label_names.txt",
            Self::Cifar100Coarse => "coarse_label_names.txt",
        }
    }

    /// The meta pickle of the python format and its class-name key.
    pub(crate) fn python_meta(self) -> (&'static str, &'static str) {
        match self {
            Self::Cifar10 => ("batches.meta", "label_names"),
            Self::Cifar100 => ("meta", "fine_label_names"),
            Self::Cifar100Coarse => ("meta", "coarse_label_names"),
        }
    }

    /// How messages call the label the crate trains on.
    pub(crate) fn label_name(self) -> &'static str {
        match self {
            Self::Cifar10 => "label",
            Self::Cifar100 => "fine label",
            Self::Cifar100Coarse => "coarse label",
        }
    }

    /// The key of the labels the crate trains on in a python batch.
    pub(crate) fn python_label_key(self) -> &'static str {
        match self {
            Self::Cifar10 => "labels",
            Self::Cifar100 => "fine_labels",
            Self::Cifar100Coarse => "coarse_labels",
        }
    }
}
