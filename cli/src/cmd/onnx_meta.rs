//! Reads the metadata of an ONNX file (`ModelProto.metadata_props`) with prost, without ONNX Runtime:
//! `dtfsal triton-repo` needs the model config the export stored there (`dtfsal_config`).
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

/// The two fields of onnx.proto's `ModelProto` read here; prost skips every other field.
#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// `metadata_props` of the ONNX file at `path`, as a map.
pub fn read(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let m = <ModelProto as prost::Message>::decode(bytes.as_slice())
        .with_context(|| format!("{} is not an ONNX model file", path.display()))?;
    Ok(m.metadata_props.into_iter().map(|p| (p.key, p.value)).collect())
}
