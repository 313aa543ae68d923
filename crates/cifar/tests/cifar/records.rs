//! The reader of the fixture files that `scripts/make_augment_fixtures.py` writes with torchvision:
//! gzip of records, each a key of `name=value` pairs and a uint8 or float32 array.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

/// The path of the augmentation fixture file `name`.
pub fn augment_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/augment")
        .join(name)
}

/// The values of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// dtype 0.
    Bytes(Vec<u8>),
    /// dtype 1.
    Floats(Vec<f32>),
}

/// One record: its key's pairs, its array's shape and values.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    pub fields: BTreeMap<String, String>,
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Record {
    /// The value of `name` in the key; panics (a malformed fixture) when absent.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("{}: no field {name}", self.key))
    }

    /// The value of `name` parsed as a `T`.
    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> T {
        self.field(name)
            .parse()
            .unwrap_or_else(|_| panic!("{}: field {name} does not parse", self.key))
    }

    /// The bytes of a uint8 record.
    pub fn bytes(&self) -> &[u8] {
        match &self.values {
            Values::Bytes(bytes) => bytes,
            Values::Floats(_) => panic!("{}: float32, not uint8", self.key),
        }
    }

    /// The values of a float32 record.
    pub fn floats(&self) -> &[f32] {
        match &self.values {
            Values::Floats(floats) => floats,
            Values::Bytes(_) => panic!("{}: uint8, not float32", self.key),
        }
    }
}

/// Every record of the fixture file `name`, in order.
pub fn read_records(name: &str) -> Vec<Record> {
    let path = augment_fixture(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut data)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut cursor = Cursor { data: &data, at: 0 };
    let mut records = Vec::new();
    while cursor.at < data.len() {
        records.push(cursor.record());
    }
    records
}

/// Reads little-endian fields off the decompressed bytes.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, len: usize) -> &[u8] {
        let bytes = &self.data[self.at..self.at + len];
        self.at += len;
        bytes
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    fn record(&mut self) -> Record {
        let key_len = usize::from(u16::from_le_bytes(
            self.take(2).try_into().expect("2 bytes"),
        ));
        let key = String::from_utf8(self.take(key_len).to_vec()).expect("UTF-8 key");
        let fields = key
            .split(' ')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let header = self.take(2);
        let (dtype, ndim) = (header[0], header[1]);
        let shape: Vec<usize> = (0..ndim).map(|_| self.u32() as usize).collect();
        let count: usize = shape.iter().product();
        let values = match dtype {
            0 => Values::Bytes(self.take(count).to_vec()),
            1 => Values::Floats(
                self.take(4 * count)
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
            ),
            other => panic!("{key}: unknown dtype {other}"),
        };
        Record {
            key,
            fields,
            shape,
            values,
        }
    }
}
