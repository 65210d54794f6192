//! The project's weight file: safetensors with the model config in its metadata.
//!
//! Tensors are named exactly like the PyTorch reference model's state dict (spec
//! `weights-dtfsal-av.tsv`) and stored as F32, F16 or BF16; BatchNorm `num_batches_tracked`
//! is never stored. The safetensors `__metadata__` carries:
//!
//! | key | value |
//! |---|---|
//! | `format` | `dtfsal-weights` |
//! | `format_version` | `1` |
//! | `config` | the [`ModelConfig`] as a JSON string |
//! | `part` | `model` (whole network), `mvit` or `vggish` (a pretrained trunk only) |
//!
//! Carrying the config makes a file self-describing: the engine builds the network from it and
//! [`WeightFile::check`] compares the stored tensors with [`expected_tensors`] before any tensor
//! is used, so a wrong checkpoint fails up front with the names of the offending tensors.
//! Every error names the file and the reason; malformed input never panics.
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::config::{ConfigError, ModelConfig};

mod expected;
pub use expected::{TensorSpec, expected_tensors, is_buffer, param_count};

/// Value of the `format` metadata key.
pub const FORMAT_NAME: &str = "dtfsal-weights";
/// Value of the `format_version` metadata key this reader understands.
pub const FORMAT_VERSION: &str = "1";
/// Metadata key naming the format.
pub const KEY_FORMAT: &str = "format";
/// Metadata key holding the format version.
pub const KEY_FORMAT_VERSION: &str = "format_version";
/// Metadata key holding the config JSON.
pub const KEY_CONFIG: &str = "config";
/// Metadata key saying which part of the model the file holds.
pub const KEY_PART: &str = "part";

/// Which part of the network a weight file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The whole model.
    Model,
    /// Only the MViTv2 trunk (`encoder.mvit.*`), e.g. converted Kinetics-400 weights.
    Mvit,
    /// Only the VGGish conv trunk (`audio.vggish.*`), e.g. converted AudioSet weights.
    Vggish,
}

impl Part {
    /// The spelling used in the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Model => "model",
            Part::Mvit => "mvit",
            Part::Vggish => "vggish",
        }
    }

    /// Parses the metadata spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "model" => Some(Part::Model),
            "mvit" => Some(Part::Mvit),
            "vggish" => Some(Part::Vggish),
            _ => None,
        }
    }

    /// Whether a tensor of the full model belongs to this part.
    pub fn includes(self, name: &str) -> bool {
        match self {
            Part::Model => true,
            Part::Mvit => name.starts_with("encoder.mvit."),
            Part::Vggish => name.starts_with("audio.vggish."),
        }
    }

    /// The tensors a file of this part must hold for `config`.
    pub fn expected_tensors(self, config: &ModelConfig) -> Vec<TensorSpec> {
        let mut all = expected_tensors(config);
        all.retain(|(name, _)| self.includes(name));
        all
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Element types a weight file may store; everything is converted to f32 on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StorageDtype {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl StorageDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDtype::F32 => 4,
            StorageDtype::F16 | StorageDtype::Bf16 => 2,
        }
    }

    pub(crate) fn from_safetensors(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(StorageDtype::F32),
            Dtype::F16 => Some(StorageDtype::F16),
            Dtype::BF16 => Some(StorageDtype::Bf16),
            _ => None,
        }
    }

    pub(crate) fn to_safetensors(self) -> Dtype {
        match self {
            StorageDtype::F32 => Dtype::F32,
            StorageDtype::F16 => Dtype::F16,
            StorageDtype::Bf16 => Dtype::BF16,
        }
    }

    /// Little-endian encoding of `values` in this dtype (rounding to nearest for f16/bf16).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * self.size());
        for &v in values {
            match self {
                StorageDtype::F32 => out.extend_from_slice(&v.to_le_bytes()),
                StorageDtype::F16 => out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()),
                StorageDtype::Bf16 => out.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
            }
        }
        out
    }

    /// Decodes little-endian bytes of this dtype; `bytes.len()` must be a multiple of [`Self::size`].
    pub(crate) fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            StorageDtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            StorageDtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            StorageDtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }
}

impl fmt::Display for StorageDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageDtype::F32 => "F32",
            StorageDtype::F16 => "F16",
            StorageDtype::Bf16 => "BF16",
        })
    }
}

/// A tensor's entry in the file: dtype, shape and where its bytes are.
#[derive(Debug, Clone)]
pub struct StoredTensor {
    /// Element type on disk.
    pub dtype: StorageDtype,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Byte range within the whole file.
    bytes: Range<usize>,
}

impl StoredTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Differences between a file's tensors and the expected list, all reported by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorMismatch {
    /// Expected tensors the file lacks, with their expected shapes.
    pub missing: Vec<TensorSpec>,
    /// Tensors in the file that the model does not have, with their stored shapes.
    pub unexpected: Vec<TensorSpec>,
    /// `(name, expected shape, stored shape)` of tensors whose shape differs.
    pub wrong_shape: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl TensorMismatch {
    /// True when the file matches the expected list.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.wrong_shape.is_empty()
    }
}

impl fmt::Display for TensorMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            let list: Vec<_> = self
                .missing
                .iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect();
            parts.push(format!(
                "{} missing: {}",
                self.missing.len(),
                list.join(", ")
            ));
        }
        if !self.unexpected.is_empty() {
            let list: Vec<_> = self
                .unexpected
                .iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect();
            parts.push(format!(
                "{} unexpected: {}",
                self.unexpected.len(),
                list.join(", ")
            ));
        }
        if !self.wrong_shape.is_empty() {
            let list: Vec<_> = self
                .wrong_shape
                .iter()
                .map(|(n, want, got)| format!("{n} expected {want:?} found {got:?}"))
                .collect();
            parts.push(format!(
                "{} with wrong shape: {}",
                self.wrong_shape.len(),
                list.join(", ")
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Everything that can go wrong reading, checking or writing a weight file.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The path does not exist.
    #[error("weight file {}: not found", path.display())]
    NotFound {
        /// The file asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("weight file {}: cannot read: {source}", path.display())]
    Io {
        /// The file asked for.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a safetensors file, or a corrupt or truncated one.
    #[error("weight file {}: not a valid safetensors file: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A required `__metadata__` key is absent.
    #[error("weight file {}: metadata key `{key}` is missing (not a {FORMAT_NAME} file?)", path.display())]
    MissingMetadata {
        /// The file.
        path: PathBuf,
        /// The missing key.
        key: &'static str,
    },
    /// A metadata value is not one this reader understands.
    #[error("weight file {}: metadata key `{key}`: {reason}", path.display())]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// The offending key.
        key: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// The config JSON does not parse or describes an impossible model.
    #[error("weight file {}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The config problem (names the field).
        source: ConfigError,
    },
    /// A tensor is stored in a dtype other than F32/F16/BF16.
    #[error("weight file {}: tensor `{tensor}` has unsupported dtype {dtype} (expected F32, F16 or BF16)", path.display())]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its stored dtype.
        dtype: String,
    },
    /// A tensor asked for by name is not in the file.
    #[error("weight file {}: tensor `{tensor}` not found", path.display())]
    TensorNotFound {
        /// The file.
        path: PathBuf,
        /// The tensor asked for.
        tensor: String,
    },
    /// The file's tensors do not match the model's expected list.
    #[error("weight file {}: tensors do not match the model config: {mismatch}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Every difference, by name.
        mismatch: TensorMismatch,
    },
    /// Writing: a tensor's data length does not match its shape.
    #[error("tensor `{tensor}`: {reason}")]
    BadTensor {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
}

/// An opened, header-validated weight file. Tensor data is read into memory once.
#[derive(Debug)]
pub struct WeightFile {
    path: PathBuf,
    bytes: Vec<u8>,
    tensors: BTreeMap<String, StoredTensor>,
    metadata: HashMap<String, String>,
    config: ModelConfig,
    part: Part,
}

impl WeightFile {
    /// Reads and validates a weight file: safetensors structure, metadata, config, dtypes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WeightError> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => WeightError::NotFound { path: path.clone() },
            _ => WeightError::Io {
                path: path.clone(),
                source,
            },
        })?;
        Self::from_bytes(bytes, path)
    }

    /// Validates an in-memory weight file; `path` is only used in error messages.
    pub fn from_bytes(bytes: Vec<u8>, path: impl Into<PathBuf>) -> Result<Self, WeightError> {
        let path = path.into();
        let (header_len, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| WeightError::Corrupt {
                path: path.clone(),
                reason: describe_safetensors_error(&e),
            })?;
        // read_metadata checked that the offsets tile the data section exactly.
        let data_start = 8 + header_len;
        let mut tensors = BTreeMap::new();
        for (name, info) in meta.tensors() {
            let Some(dtype) = StorageDtype::from_safetensors(info.dtype) else {
                return Err(WeightError::UnsupportedDtype {
                    path,
                    tensor: name,
                    dtype: info.dtype.to_string(),
                });
            };
            let (start, end) = info.data_offsets;
            let entry = StoredTensor {
                dtype,
                shape: info.shape.clone(),
                bytes: data_start + start..data_start + end,
            };
            tensors.insert(name, entry);
        }
        let metadata = meta.metadata().clone().unwrap_or_default();
        let get = |key: &'static str| {
            metadata
                .get(key)
                .ok_or_else(|| WeightError::MissingMetadata {
                    path: path.clone(),
                    key,
                })
        };
        let format = get(KEY_FORMAT)?;
        if format != FORMAT_NAME {
            return Err(WeightError::BadMetadata {
                path,
                key: KEY_FORMAT,
                reason: format!("expected `{FORMAT_NAME}`, found `{format}`"),
            });
        }
        let version = get(KEY_FORMAT_VERSION)?;
        if version != FORMAT_VERSION {
            return Err(WeightError::BadMetadata {
                path,
                key: KEY_FORMAT_VERSION,
                reason: format!(
                    "this reader understands version {FORMAT_VERSION}, found `{version}`"
                ),
            });
        }
        let part_str = get(KEY_PART)?;
        let part = Part::parse(part_str).ok_or_else(|| WeightError::BadMetadata {
            path: path.clone(),
            key: KEY_PART,
            reason: format!("expected `model`, `mvit` or `vggish`, found `{part_str}`"),
        })?;
        let config =
            ModelConfig::from_json(get(KEY_CONFIG)?).map_err(|source| WeightError::Config {
                path: path.clone(),
                source,
            })?;
        Ok(WeightFile {
            path,
            bytes,
            tensors,
            metadata,
            config,
            part,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model config stored in the metadata (already validated).
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Which part of the model the file holds.
    pub fn part(&self) -> Part {
        self.part
    }

    /// A raw `__metadata__` value.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Number of stored tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the file stores no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Stored tensors by name (sorted).
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &StoredTensor)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// One tensor's entry, if stored.
    pub fn tensor_info(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.get(name)
    }

    /// Number of stored learnable parameters (BatchNorm running statistics excluded, see [`is_buffer`]).
    pub fn param_count(&self) -> usize {
        self.tensors
            .iter()
            .filter(|(n, _)| !is_buffer(n))
            .map(|(_, t)| t.numel())
            .sum()
    }

    /// Number of stored scalars, buffers included.
    pub fn scalar_count(&self) -> usize {
        self.tensors.values().map(StoredTensor::numel).sum()
    }

    /// How many tensors are stored in each dtype.
    pub fn dtype_counts(&self) -> BTreeMap<StorageDtype, usize> {
        let mut counts = BTreeMap::new();
        for t in self.tensors.values() {
            *counts.entry(t.dtype).or_insert(0) += 1;
        }
        counts
    }

    /// A tensor's shape and its values converted to f32.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), WeightError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightError::TensorNotFound {
                path: self.path.clone(),
                tensor: name.to_string(),
            })?;
        // Ranges were validated against the buffer when the file was opened.
        let raw = self
            .bytes
            .get(t.bytes.clone())
            .ok_or_else(|| WeightError::Corrupt {
                path: self.path.clone(),
                reason: format!("tensor `{name}` lies outside the file"),
            })?;
        Ok((t.shape.clone(), t.dtype.decode(raw)))
    }

    /// Compares the stored tensors with `expected`; every difference is reported by name.
    pub fn check(&self, expected: &[TensorSpec]) -> Result<(), WeightError> {
        let mut mismatch = TensorMismatch::default();
        let mut seen = std::collections::HashSet::with_capacity(expected.len());
        for (name, shape) in expected {
            seen.insert(name.as_str());
            match self.tensors.get(name) {
                None => mismatch.missing.push((name.clone(), shape.clone())),
                Some(t) if &t.shape != shape => {
                    mismatch
                        .wrong_shape
                        .push((name.clone(), shape.clone(), t.shape.clone()))
                }
                Some(_) => {}
            }
        }
        for (name, t) in &self.tensors {
            if !seen.contains(name.as_str()) {
                mismatch.unexpected.push((name.clone(), t.shape.clone()));
            }
        }
        if mismatch.is_empty() {
            Ok(())
        } else {
            Err(WeightError::Mismatch {
                path: self.path.clone(),
                mismatch,
            })
        }
    }

    /// [`Self::check`] against the tensors this file's config and part require.
    pub fn check_model(&self) -> Result<(), WeightError> {
        self.check(&self.part.expected_tensors(&self.config))
    }
}

/// Plain-language reasons for the structural errors safetensors reports.
fn describe_safetensors_error(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::HeaderTooSmall => "file is shorter than the 8-byte header length".into(),
        SafeTensorError::InvalidHeaderLength => {
            "header length exceeds the file size (truncated?)".into()
        }
        SafeTensorError::HeaderTooLarge => {
            "header length is implausibly large (not safetensors?)".into()
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "tensor data does not cover the file exactly (truncated or trailing bytes)".into()
        }
        other => other.to_string(),
    }
}

/// The `__metadata__` of a weight file holding `part` of the model described by `config`.
pub fn metadata_for(config: &ModelConfig, part: Part) -> HashMap<String, String> {
    HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT_NAME.to_string()),
        (KEY_FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string()),
        (KEY_CONFIG.to_string(), config.to_json()),
        (KEY_PART.to_string(), part.to_string()),
    ])
}

/// Serialises f32 tensors into a weight file stored as `dtype` (used by tests and tools).
pub fn to_bytes<'a>(
    config: &ModelConfig,
    part: Part,
    tensors: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [f32])>,
    dtype: StorageDtype,
) -> Result<Vec<u8>, WeightError> {
    let mut encoded = Vec::new();
    for (name, shape, values) in tensors {
        let numel: usize = shape.iter().product();
        if numel != values.len() {
            return Err(WeightError::BadTensor {
                tensor: name.to_string(),
                reason: format!("shape {shape:?} needs {numel} values, got {}", values.len()),
            });
        }
        encoded.push((name, shape.to_vec(), dtype.encode(values)));
    }
    let views = encoded
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(dtype.to_safetensors(), shape.clone(), data)
                .map(|v| (*name, v))
                .map_err(|e| WeightError::BadTensor {
                    tensor: name.to_string(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(metadata_for(config, part))).map_err(|e| {
        WeightError::BadTensor {
            tensor: "<file>".into(),
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Variant;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A unique scratch path under the system temp dir, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            Scratch(std::env::temp_dir().join(format!(
                "dtfsal-weights-{}-{n}-{tag}.safetensors",
                std::process::id()
            )))
        }
        fn write(&self, bytes: &[u8]) -> &Path {
            std::fs::write(&self.0, bytes).unwrap();
            &self.0
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn cfg() -> ModelConfig {
        ModelConfig::full(Variant::Visual)
    }

    fn two_tensors(dtype: StorageDtype) -> Vec<u8> {
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        let b = [3.25f32];
        to_bytes(
            &cfg(),
            Part::Model,
            [("x.a", &[2, 3][..], &a[..]), ("x.b", &[1][..], &b[..])],
            dtype,
        )
        .unwrap()
    }

    /// Raw safetensors with arbitrary metadata (bypassing [`to_bytes`]).
    fn raw(
        meta: Option<HashMap<String, String>>,
        dtype: Dtype,
        data: &[u8],
        shape: &[usize],
    ) -> Vec<u8> {
        let v = safetensors::tensor::TensorView::new(dtype, shape.to_vec(), data).unwrap();
        safetensors::serialize([("t", v)], meta).unwrap()
    }

    #[test]
    fn round_trip_f32() {
        let s = Scratch::new("rt");
        let w = WeightFile::open(s.write(&two_tensors(StorageDtype::F32))).unwrap();
        assert_eq!(w.config(), &cfg());
        assert_eq!(w.part(), Part::Model);
        assert_eq!(w.len(), 2);
        assert_eq!(w.param_count(), 7);
        assert_eq!(w.scalar_count(), 7);
        assert_eq!(w.metadata(KEY_FORMAT), Some(FORMAT_NAME));
        let (shape, v) = w.tensor_f32("x.a").unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v, vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
        assert_eq!(w.tensor_f32("x.b").unwrap().1, vec![3.25]);
        assert_eq!(w.dtype_counts(), BTreeMap::from([(StorageDtype::F32, 2)]));
    }

    #[test]
    fn f16_and_bf16_convert_to_f32() {
        for dtype in [StorageDtype::F16, StorageDtype::Bf16] {
            let w = WeightFile::from_bytes(two_tensors(dtype), "mem").unwrap();
            assert_eq!(w.tensor_info("x.a").unwrap().dtype, dtype);
            // All values are exactly representable in both half formats.
            assert_eq!(
                w.tensor_f32("x.a").unwrap().1,
                vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
            );
            assert_eq!(w.tensor_f32("x.b").unwrap().1, vec![3.25]);
        }
        let w = WeightFile::from_bytes(
            to_bytes(
                &cfg(),
                Part::Model,
                [("p", &[1][..], &[0.1f32][..])],
                StorageDtype::F16,
            )
            .unwrap(),
            "mem",
        )
        .unwrap();
        let got = w.tensor_f32("p").unwrap().1[0];
        assert!((got - 0.1).abs() < 1e-4 && got != 0.1, "{got}");
    }

    #[test]
    fn missing_file_names_path() {
        let s = Scratch::new("absent");
        let e = WeightFile::open(&s.0).unwrap_err();
        assert!(matches!(e, WeightError::NotFound { .. }));
        assert!(
            e.to_string().contains(&*s.0.to_string_lossy()) && e.to_string().contains("not found")
        );
    }

    #[test]
    fn garbage_and_truncated_files_error_without_panicking() {
        let s = Scratch::new("garbage");
        let e = WeightFile::open(s.write(b"hello, this is not a safetensors file")).unwrap_err();
        assert!(matches!(e, WeightError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(&*s.0.to_string_lossy()));
        let full = two_tensors(StorageDtype::F32);
        for cut in [0, 3, 8, 20, full.len() / 2, full.len() - 1] {
            let e = WeightFile::from_bytes(full[..cut].to_vec(), "cut.safetensors").unwrap_err();
            assert!(matches!(e, WeightError::Corrupt { .. }), "cut {cut}: {e}");
            assert!(e.to_string().contains("cut.safetensors"), "{e}");
        }
        let mut padded = full.clone();
        padded.push(0);
        assert!(matches!(
            WeightFile::from_bytes(padded, "p").unwrap_err(),
            WeightError::Corrupt { .. }
        ));
    }

    #[test]
    fn metadata_errors_name_the_key() {
        let data = 1.0f32.to_le_bytes();
        let e = WeightFile::from_bytes(raw(None, Dtype::F32, &data, &[1]), "m").unwrap_err();
        assert!(e.to_string().contains("`format`"), "{e}");
        let mut meta = metadata_for(&cfg(), Part::Model);
        meta.remove(KEY_CONFIG);
        let e = WeightFile::from_bytes(raw(Some(meta), Dtype::F32, &data, &[1]), "m").unwrap_err();
        assert!(
            matches!(
                e,
                WeightError::MissingMetadata {
                    key: KEY_CONFIG,
                    ..
                }
            ),
            "{e}"
        );
        let mut meta = metadata_for(&cfg(), Part::Model);
        meta.insert(KEY_PART.into(), "decoder".into());
        let e = WeightFile::from_bytes(raw(Some(meta), Dtype::F32, &data, &[1]), "m").unwrap_err();
        assert!(
            e.to_string().contains("`part`") && e.to_string().contains("decoder"),
            "{e}"
        );
        let mut meta = metadata_for(&cfg(), Part::Model);
        meta.insert(KEY_FORMAT_VERSION.into(), "2".into());
        let e = WeightFile::from_bytes(raw(Some(meta), Dtype::F32, &data, &[1]), "m").unwrap_err();
        assert!(e.to_string().contains("format_version"), "{e}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let data = 1.0f32.to_le_bytes();
        let mut meta = metadata_for(&cfg(), Part::Model);
        meta.insert(
            KEY_CONFIG.into(),
            cfg()
                .to_json()
                .replace("\"width\":384", "\"width\":\"wide\""),
        );
        let e = WeightFile::from_bytes(raw(Some(meta), Dtype::F32, &data, &[1]), "bad.safetensors")
            .unwrap_err();
        assert!(matches!(e, WeightError::Config { .. }), "{e}");
        assert!(
            e.to_string().contains("width") && e.to_string().contains("bad.safetensors"),
            "{e}"
        );
        let mut meta = metadata_for(&cfg(), Part::Model);
        meta.insert(
            KEY_CONFIG.into(),
            cfg().to_json().replace("\"height\":224", "\"height\":100"),
        );
        let e = WeightFile::from_bytes(raw(Some(meta), Dtype::F32, &data, &[1]), "m").unwrap_err();
        assert!(e.to_string().contains("height"), "{e}");
    }

    #[test]
    fn unsupported_dtype_names_the_tensor() {
        let meta = metadata_for(&cfg(), Part::Model);
        let e =
            WeightFile::from_bytes(raw(Some(meta), Dtype::I64, &[0u8; 8], &[]), "m").unwrap_err();
        assert!(matches!(e, WeightError::UnsupportedDtype { .. }), "{e}");
        assert!(
            e.to_string().contains("`t`") && e.to_string().contains("I64"),
            "{e}"
        );
    }

    #[test]
    fn unknown_tensor_is_named() {
        let w = WeightFile::from_bytes(two_tensors(StorageDtype::F32), "m").unwrap();
        let e = w.tensor_f32("nope.weight").unwrap_err();
        assert!(e.to_string().contains("nope.weight"), "{e}");
    }

    #[test]
    fn check_reports_every_difference_by_name() {
        let w = WeightFile::from_bytes(two_tensors(StorageDtype::F32), "m").unwrap();
        assert!(
            w.check(&[("x.a".into(), vec![2, 3]), ("x.b".into(), vec![1])])
                .is_ok()
        );
        let expected = vec![
            ("x.a".to_string(), vec![3, 2]),
            ("x.c".to_string(), vec![4]),
        ];
        let e = w.check(&expected).unwrap_err();
        let WeightError::Mismatch { mismatch, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(mismatch.missing, vec![("x.c".to_string(), vec![4])]);
        assert_eq!(mismatch.unexpected, vec![("x.b".to_string(), vec![1])]);
        assert_eq!(
            mismatch.wrong_shape,
            vec![("x.a".to_string(), vec![3, 2], vec![2, 3])]
        );
        let msg = e.to_string();
        for name in ["x.a", "x.b", "x.c"] {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn part_filters_expected_tensors() {
        let c = ModelConfig::full(Variant::AudioVisual);
        let mvit = Part::Mvit.expected_tensors(&c);
        assert!(!mvit.is_empty() && mvit.iter().all(|(n, _)| n.starts_with("encoder.mvit.")));
        let vgg = Part::Vggish.expected_tensors(&c);
        assert_eq!(vgg.len(), 12);
        assert_eq!(
            Part::Model.expected_tensors(&c).len(),
            expected_tensors(&c).len()
        );
    }

    #[test]
    fn to_bytes_rejects_wrong_data_length() {
        let e = to_bytes(
            &cfg(),
            Part::Model,
            [("bad", &[2, 2][..], &[1.0f32][..])],
            StorageDtype::F32,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
    }
}
