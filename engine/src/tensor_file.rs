//! Plain tensor files (safetensors) for parity cases, CLI inputs and outputs: name -> f32 tensor.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::TensorView;

use crate::tensor::Tensor;
use crate::weights::StorageDtype;

#[derive(Debug, thiserror::Error)]
pub enum TensorFileError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: tensor `{tensor}` has unsupported dtype {dtype} (expected F32, F16 or BF16)")]
    Dtype { path: String, tensor: String, dtype: String },
    #[error("{path}: cannot write: {reason}")]
    Write { path: String, reason: String },
}

/// Reads every floating-point tensor of a safetensors file as f32.
pub fn read_tensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>, TensorFileError> {
    let path = path.as_ref();
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| TensorFileError::Read { path: p.clone(), reason: e.to_string() })?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| TensorFileError::Read { path: p.clone(), reason: format!("not a valid safetensors file: {e}") })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = StorageDtype::from_safetensors(view.dtype())
            .ok_or_else(|| TensorFileError::Dtype { path: p.clone(), tensor: name.clone(), dtype: format!("{:?}", view.dtype()) })?;
        out.insert(name, Tensor::from_vec(view.shape(), dtype.decode(view.data())));
    }
    Ok(out)
}

/// Writes f32 tensors (sorted by name) with optional string metadata.
pub fn write_tensors(path: impl AsRef<Path>, tensors: &BTreeMap<String, Tensor>, metadata: Option<std::collections::HashMap<String, String>>) -> Result<(), TensorFileError> {
    let path = path.as_ref();
    let p = path.display().to_string();
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, t)| (k.clone(), t.shape().to_vec(), StorageDtype::F32.encode(t.data()))).collect();
    let views = encoded
        .iter()
        .map(|(k, s, b)| {
            TensorView::new(StorageDtype::F32.to_safetensors(), s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| TensorFileError::Write { path: p.clone(), reason: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize_to_file(views, metadata, path).map_err(|e| TensorFileError::Write { path: p, reason: e.to_string() })
}
