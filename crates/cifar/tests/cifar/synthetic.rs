//! Synthetic data in the official layouts, shared by the cifar crate's tests and the CLI's
//! (which include this file by path): Python 2 pickles, python batches, gzip'd tars and a whole
//! CIFAR-100 python archive.

use std::io::Write;

use cnnzoo_cifar::{CifarKind, IMAGE_BYTES};

/// A gzip-compressed tar of `(path, contents)` files.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, *contents)
            .expect("tar entry");
    }
    gzip(&tar.into_inner().expect("tar"))
}

/// Gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Pickle writer emulating Python 2's cPickle (protocol 2), which wrote the official
/// `cifar-10-python.tar.gz` batches: byte strings for keys and data, the numpy array as
/// `_reconstruct(ndarray, (0,), 'b')` with the state `(1, shape, dtype('u1'), False, data)`.
pub struct Py2Pickle {
    out: Vec<u8>,
    memo: u8,
}

impl Default for Py2Pickle {
    /// An empty pickle: just the protocol 2 header.
    fn default() -> Self {
        Self {
            out: vec![0x80, 0x02],
            memo: 0,
        }
    }
}

impl Py2Pickle {
    /// Writes `opcode` and memoizes what it builds, as cPickle does for every list, dict, tuple
    /// and object.
    fn memoized(&mut self, opcode: u8) {
        self.out.push(opcode);
        self.put();
    }

    fn put(&mut self) {
        self.memo = self.memo.wrapping_add(1);
        self.out.extend_from_slice(&[b'q', self.memo]);
    }

    pub fn string(&mut self, text: &[u8]) {
        if text.len() < 256 {
            self.out.push(b'U');
            self.out.push(text.len() as u8);
        } else {
            self.out.push(b'T');
            self.out
                .extend_from_slice(&(text.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(text);
        self.put();
    }

    pub fn int(&mut self, value: i64) {
        match value {
            0..=255 => self.out.extend_from_slice(&[b'K', value as u8]),
            256..=65535 => {
                self.out.push(b'M');
                self.out.extend_from_slice(&(value as u16).to_le_bytes());
            }
            _ => {
                self.out.push(b'J');
                self.out.extend_from_slice(&(value as i32).to_le_bytes());
            }
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self.put();
    }

    pub fn uint8_array(&mut self, rows: usize, columns: usize, data: &[u8]) {
        self.global("numpy.core.multiarray", "_reconstruct");
        self.global("numpy", "ndarray");
        self.int(0);
        self.memoized(0x85);
        self.string(b"b");
        self.memoized(0x87);
        self.memoized(b'R');
        self.out.push(b'(');
        self.int(1);
        self.int(rows as i64);
        self.int(columns as i64);
        self.memoized(0x86);
        self.global("numpy", "dtype");
        self.string(b"u1");
        self.int(0);
        self.int(1);
        self.memoized(0x87);
        self.memoized(b'R');
        self.out.push(b'(');
        self.int(3);
        self.string(b"|");
        self.out.extend_from_slice(b"NNN");
        self.int(-1);
        self.int(-1);
        self.int(0);
        self.memoized(b't');
        self.out.push(b'b');
        self.out.push(0x89);
        self.string(data);
        self.memoized(b't');
        self.out.push(b'b');
    }

    pub fn int_list(&mut self, values: &[u8]) {
        self.memoized(b']');
        for chunk in values.chunks(1000) {
            self.out.push(b'(');
            for &value in chunk {
                self.int(i64::from(value));
            }
            self.out.push(b'e');
        }
    }

    pub fn string_list(&mut self, values: &[&str]) {
        self.memoized(b']');
        self.out.push(b'(');
        for value in values {
            self.string(value.as_bytes());
        }
        self.out.push(b'e');
    }

    pub fn begin_dict(&mut self) {
        self.memoized(b'}');
        self.out.push(b'(');
    }

    pub fn end_dict(&mut self) {
        self.out.push(b'u');
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'.');
        self.out
    }
}

/// A python-format batch as the official archive has it (one row of `data` per 3,072 bytes),
/// with one label list per `(key, labels)`: `labels` for CIFAR-10, `fine_labels` and
/// `coarse_labels` for CIFAR-100.
pub fn python_batch(images: &[u8], label_lists: &[(&str, &[u8])]) -> Vec<u8> {
    let mut pickle = Py2Pickle::default();
    pickle.begin_dict();
    pickle.string(b"data");
    pickle.uint8_array(images.len() / IMAGE_BYTES, IMAGE_BYTES, images);
    for (key, labels) in label_lists {
        pickle.string(key.as_bytes());
        pickle.int_list(labels);
    }
    pickle.string(b"batch_label");
    pickle.string(b"training batch 1 of 5");
    pickle.end_dict();
    pickle.finish()
}

/// The fine label of image `index` of a synthetic CIFAR-100 set, and its coarse label: fine
/// label `f` belongs to super-class `f % 20`, which is not CIFAR-100's grouping but lets a test
/// tell the two labellings apart.
pub fn cifar100_labels(index: usize) -> (u8, u8) {
    let fine = (index * 37 % 100) as u8;
    (fine, fine % 20)
}

/// A synthetic `cifar-100-python.tar.gz`: `train` and `test` images of pseudo-random pixels
/// labelled by [`cifar100_labels`], and a meta file with both class-name lists.
pub fn cifar100_python_archive(train: usize, test: usize) -> Vec<u8> {
    let batch = |count: usize, offset: usize| {
        let pixels: Vec<u8> = (0..count * IMAGE_BYTES)
            .map(|i| (((i + offset * IMAGE_BYTES) as u64 * 2_654_435_761) >> 13) as u8)
            .collect();
        let (fine, coarse): (Vec<u8>, Vec<u8>) =
            (offset..offset + count).map(cifar100_labels).unzip();
        python_batch(
            &pixels,
            &[("fine_labels", &fine), ("coarse_labels", &coarse)],
        )
    };
    let mut meta = Py2Pickle::default();
    meta.begin_dict();
    for (key, kind) in [
        ("fine_label_names", CifarKind::Cifar100),
        ("coarse_label_names", CifarKind::Cifar100Coarse),
    ] {
        meta.string(key.as_bytes());
        meta.string_list(kind.default_classes());
    }
    meta.end_dict();
    tar_gz(&[
        ("cifar-100-python/train", &batch(train, 0)),
        ("cifar-100-python/test", &batch(test, train)),
        ("cifar-100-python/meta", &meta.finish()),
    ])
}
