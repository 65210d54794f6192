//! Fuzzes the weight-file loader: `WeightFile::from_bytes` (what `WeightFile::open` and
//! `Model::load` run on a file's bytes: safetensors structure, `__metadata__`, the config JSON and
//! its validation, dtypes), the accessors of an opened file, `check_model` and
//! `Model::from_weight_file`.
//!
//! Three kinds of input, so that the fuzzer gets past each layer of checks:
//! - `Raw`: any bytes.
//! - `Header`: a safetensors file assembled from fuzzed parts: tensor entries (names from the real
//!   model's list or arbitrary, dtypes valid and not, shapes small and huge, data offsets consistent
//!   or not), metadata keys present or not with valid or fuzzed values, and a config JSON that is
//!   the tiny/full config with fuzzed field edits (wrong types, huge numbers, missing fields).
//! - `Model`: a complete weight file for a fuzzed *valid* config (every expected tensor present
//!   with its shape), small enough to build: it must load, and `Model::from_weight_file` must
//!   not panic.
//!
//! Checked: no panic (overflow checks are on); an opened file's tensors decode to `numel` values;
//! a valid config survives the JSON round trip; a complete file of a valid config opens and passes
//! `check_model`.
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use dtfsal_engine::config::{AmfbAudioMode, ModelConfig, Variant};
use dtfsal_engine::model::{Backend, Model};
use dtfsal_engine::weights::{self, Part, StorageDtype, WeightFile, expected_tensors};
use libfuzzer_sys::fuzz_target;

/// Scalars of a generated complete model at most (the tiny model has ~1.3 M).
const MAX_MODEL_SCALARS: usize = 2_000_000;

/// Tensor names of the tiny AV model (state-dict order), for picking realistic names.
static NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| expected_tensors(&ModelConfig::tiny(Variant::AudioVisual)).into_iter().map(|(n, _)| n).collect());

/// Field names of the config JSON.
static FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    match serde_json::to_value(ModelConfig::tiny(Variant::AudioVisual)) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
});

#[derive(Debug, Arbitrary)]
enum JsonVal {
    Small(u8),
    Int(u64),
    Neg(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Array(Vec<u16>),
    BigArray(Vec<u64>),
    Remove,
}

impl JsonVal {
    fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            JsonVal::Small(v) => Value::from(*v),
            JsonVal::Int(v) => Value::from(*v),
            JsonVal::Neg(v) => Value::from(*v),
            // non-finite floats serialise as null
            JsonVal::Float(v) => Value::from(*v),
            JsonVal::Str(s) => Value::from(s.as_str()),
            JsonVal::Bool(b) => Value::from(*b),
            JsonVal::Null => Value::Null,
            JsonVal::Array(v) => Value::from(v.clone()),
            JsonVal::BigArray(v) => Value::from(v.clone()),
            JsonVal::Remove => return None,
        })
    }
}

/// The config metadata value.
#[derive(Debug, Arbitrary)]
enum ConfigText {
    /// A known config's JSON with fields replaced or removed.
    Edited { full: bool, visual: bool, edits: Vec<(u8, JsonVal)> },
    /// Any text.
    Raw(String),
}

impl ConfigText {
    fn text(&self) -> String {
        match self {
            ConfigText::Edited { full, visual, edits } => {
                let variant = if *visual { Variant::Visual } else { Variant::AudioVisual };
                let c = if *full { ModelConfig::full(variant) } else { ModelConfig::tiny(variant) };
                let Ok(serde_json::Value::Object(mut map)) = serde_json::to_value(c) else { return String::new() };
                for (field, val) in edits {
                    let Some(name) = FIELDS.get(*field as usize % FIELDS.len().max(1)) else { continue };
                    match val.to_json() {
                        Some(v) => map.insert(name.clone(), v),
                        None => map.remove(name),
                    };
                }
                serde_json::Value::Object(map).to_string()
            }
            ConfigText::Raw(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Text {
    /// The value the reader expects.
    Good,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Name {
    Known(u16),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Dim {
    Small(u8),
    Any(u64),
}

#[derive(Debug, Arbitrary)]
enum Offsets {
    /// Right after the previous tensor, `numel · dtype size` bytes (saturating).
    Consistent,
    /// Consistent, then nudged.
    Nudged(i8, i8),
    Any(u64, u64),
}

#[derive(Debug, Arbitrary)]
struct Entry {
    name: Name,
    /// Index into [`DTYPES`].
    dtype: u8,
    shape: Vec<Dim>,
    offsets: Offsets,
}

const DTYPES: [(&str, u64); 12] = [
    ("F32", 4),
    ("F16", 2),
    ("BF16", 2),
    ("F64", 8),
    ("I64", 8),
    ("I32", 4),
    ("U8", 1),
    ("BOOL", 1),
    ("F8_E4M3", 1),
    ("F4", 1),
    ("I8", 1),
    ("f32", 4),
];

#[derive(Debug, Arbitrary)]
struct HeaderSpec {
    entries: Vec<Entry>,
    format: Option<Text>,
    version: Option<Text>,
    part: Option<(u8, Text)>,
    config: Option<ConfigText>,
    extra_meta: Vec<(String, String)>,
    /// `__metadata__` with a non-string value (safetensors wants strings).
    bad_meta_value: Option<JsonVal>,
    /// Spaces after the JSON (safetensors pads headers to 8 bytes).
    padding: u8,
    /// Data bytes added (positive) or cut (negative) after the consistent length.
    data_adjust: i16,
    /// Replaces the 8-byte header length.
    header_len: Option<u64>,
    /// Overwrites one byte of the header JSON.
    flip: Option<(u16, u8)>,
    /// Byte pattern of the tensor data.
    fill: u8,
}

impl HeaderSpec {
    fn bytes(&self) -> Vec<u8> {
        use serde_json::{Map, Value};
        let mut header = Map::new();
        let mut meta = Map::new();
        let text = |t: &Text, good: &str| match t {
            Text::Good => good.to_string(),
            Text::Other(s) => s.clone(),
        };
        if let Some(t) = &self.format {
            meta.insert(weights::KEY_FORMAT.into(), text(t, weights::FORMAT_NAME).into());
        }
        if let Some(t) = &self.version {
            meta.insert(weights::KEY_FORMAT_VERSION.into(), text(t, weights::FORMAT_VERSION).into());
        }
        if let Some((p, t)) = &self.part {
            let good = [Part::Model, Part::Mvit, Part::Vggish][*p as usize % 3].as_str();
            meta.insert(weights::KEY_PART.into(), text(t, good).into());
        }
        if let Some(c) = &self.config {
            meta.insert(weights::KEY_CONFIG.into(), c.text().into());
        }
        for (k, v) in &self.extra_meta {
            meta.insert(k.clone(), v.clone().into());
        }
        if let Some(v) = self.bad_meta_value.as_ref().and_then(JsonVal::to_json) {
            meta.insert("bad".into(), v);
        }
        if !meta.is_empty() || self.bad_meta_value.is_some() {
            header.insert("__metadata__".into(), Value::Object(meta));
        }
        let mut at: u64 = 0;
        for e in &self.entries {
            let name = match &e.name {
                Name::Known(i) => NAMES[*i as usize % NAMES.len()].clone(),
                Name::Other(s) => s.clone(),
            };
            let (dtype, size) = DTYPES[e.dtype as usize % DTYPES.len()];
            let shape: Vec<u64> = e
                .shape
                .iter()
                .take(6)
                .map(|d| match d {
                    Dim::Small(v) => *v as u64,
                    Dim::Any(v) => *v,
                })
                .collect();
            let len = shape.iter().fold(size, |a, &d| a.saturating_mul(d));
            let (start, end) = match e.offsets {
                Offsets::Consistent => (at, at.saturating_add(len)),
                Offsets::Nudged(a, b) => (
                    at.saturating_add_signed(a as i64),
                    at.saturating_add(len).saturating_add_signed(b as i64),
                ),
                Offsets::Any(a, b) => (a, b),
            };
            at = at.max(end);
            let mut t = Map::new();
            t.insert("dtype".into(), dtype.into());
            t.insert("shape".into(), shape.into());
            t.insert("data_offsets".into(), vec![start, end].into());
            header.insert(name, Value::Object(t));
        }
        let mut json = Value::Object(header).to_string().into_bytes();
        if let Some((i, b)) = self.flip {
            if !json.is_empty() {
                let i = i as usize % json.len();
                json[i] = b;
            }
        }
        json.extend(std::iter::repeat_n(b' ', self.padding as usize % 16));
        let header_len = self.header_len.unwrap_or(json.len() as u64);
        // Data: the consistent length, adjusted, capped (offsets may claim exabytes).
        let data_len = (at.min(1 << 20) as i64 + self.data_adjust as i64).max(0) as usize;
        let mut bytes = Vec::with_capacity(8 + json.len() + data_len);
        bytes.extend_from_slice(&header_len.to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.resize(bytes.len() + data_len, self.fill);
        bytes
    }
}

/// A config built field by field from the tiny one, with values that often validate.
#[derive(Debug)]
struct ConfigSpec(ModelConfig);

/// Usually a plausible size, sometimes anything.
fn size(u: &mut Unstructured<'_>) -> arbitrary::Result<usize> {
    const PLAUSIBLE: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64, 96, 160];
    Ok(match u.int_in_range(0..=7u8)? {
        0 => u.arbitrary::<u64>()? as usize,
        1 => u.int_in_range(0..=1024)?,
        _ => PLAUSIBLE[u.int_in_range(0..=15usize)?],
    })
}

impl<'a> Arbitrary<'a> for ConfigSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let visual: bool = u.arbitrary()?;
        let mut c = ModelConfig::tiny(if visual { Variant::Visual } else { Variant::AudioVisual });
        let edits = u.int_in_range(0..=6u8)?;
        for _ in 0..edits {
            match u.int_in_range(0..=22u8)? {
                0 => c.height = size(u)?.wrapping_mul(if u.arbitrary()? { 32 } else { 1 }),
                1 => c.width = size(u)?.wrapping_mul(if u.arbitrary()? { 32 } else { 1 }),
                2 => c.embed_dim = size(u)?,
                3 => c.stage_depths[u.int_in_range(0..=3)?] = size(u)?,
                4 => c.stage_heads[u.int_in_range(0..=3)?] = size(u)?,
                5 => c.mvit_spatial_size[u.int_in_range(0..=1)?] = size(u)?.wrapping_mul(32),
                6 => c.mvit_temporal_size = size(u)?,
                7 => c.stage_norm_eps = u.arbitrary()?,
                8 => c.neck_dim = size(u)?,
                9 => c.token_count = size(u)?,
                10 => c.token_size[u.int_in_range(0..=1)?] = size(u)?,
                11 => c.decoder_dims[u.int_in_range(0..=2)?] = size(u)?,
                12 => c.audio_slices = size(u)?,
                13 => c.audio_height = size(u)?.wrapping_mul(16),
                14 => c.audio_width = size(u)?.wrapping_mul(16),
                15 => c.vggish_channels[u.int_in_range(0..=5)?] = size(u)?,
                16 => c.te_heads = size(u)?,
                17 => c.te_dim_head = size(u)?,
                18 => c.te_mlp_dim = size(u)?,
                19 => c.te_use_patch_embed = u.arbitrary()?,
                20 => c.amfb_audio_mode = if u.arbitrary()? { AmfbAudioMode::Concat } else { AmfbAudioMode::Add },
                21 => c.video_std[u.int_in_range(0..=2)?] = u.arbitrary()?,
                _ => c.label_frame = size(u)?,
            }
        }
        Ok(ConfigSpec(c))
    }
}

#[derive(Debug, Arbitrary)]
enum Input<'a> {
    Raw(&'a [u8]),
    Header(HeaderSpec),
    Model { config: ConfigSpec, dtype: u8, value: f32 },
}

/// Loading allocates activation buffers for the input size: the fuzzer keeps it at most the
/// paper's (a 96x28224 config needs 3 GB, which is not a bug).
fn buildable(c: &ModelConfig) -> bool {
    let pixels = |s: [usize; 2]| s[0].saturating_mul(s[1]);
    pixels([c.height, c.width]).max(pixels(c.mvit_spatial_size)) <= 224 * 384
        && pixels([c.audio_height, c.audio_width]) <= 112 * 192
        && c.audio_slices <= 64
}

/// Everything a caller may do with an opened file; none of it may panic.
fn exercise(file: WeightFile) {
    let _ = (file.path(), file.part(), file.len(), file.is_empty(), file.metadata(weights::KEY_FORMAT));
    let _ = (file.param_count(), file.scalar_count(), file.dtype_counts());
    for (name, t) in file.tensors() {
        let (shape, values) = file.tensor_f32(name).expect("a listed tensor reads");
        assert_eq!(shape, t.shape);
        assert_eq!(values.len(), t.numel(), "tensor {name}: {shape:?}");
    }
    // The config was validated when the file opened: it survives the JSON round trip.
    let c = file.config();
    assert_eq!(&ModelConfig::from_json(&c.to_json()).expect("a validated config re-parses"), c);
    let _ = expected_tensors(c);
    if file.check_model().is_ok() && file.scalar_count() <= MAX_MODEL_SCALARS && buildable(c) {
        let _ = Model::from_weight_file(file, Backend::Cpu, 1);
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(bytes) => {
            if let Ok(file) = WeightFile::from_bytes(bytes.to_vec(), "raw.safetensors") {
                exercise(file);
            }
        }
        Input::Header(spec) => {
            if let Ok(file) = WeightFile::from_bytes(spec.bytes(), "header.safetensors") {
                exercise(file);
            }
        }
        Input::Model { config: ConfigSpec(c), dtype, value } => {
            let valid = c.validate().is_ok();
            if valid {
                assert_eq!(ModelConfig::from_json(&c.to_json()).expect("a valid config re-parses"), c);
            }
            let specs = expected_tensors(&c);
            if !valid {
                return;
            }
            let scalars = specs.iter().try_fold(0usize, |a, (_, s)| {
                s.iter().try_fold(1usize, |p, &d| p.checked_mul(d)).and_then(|n| a.checked_add(n))
            });
            if scalars.is_none_or(|n| n > MAX_MODEL_SCALARS) {
                return;
            }
            if !buildable(&c) {
                return;
            }
            let dtype = [StorageDtype::F32, StorageDtype::F16, StorageDtype::Bf16][dtype as usize % 3];
            let data: Vec<Vec<f32>> =
                specs.iter().map(|(_, s)| vec![value; s.iter().product()]).collect();
            let bytes = weights::to_bytes(
                &c,
                Part::Model,
                specs.iter().zip(&data).map(|((n, s), d)| (n.as_str(), &s[..], &d[..])),
                dtype,
            )
            .expect("a complete model encodes");
            let file = WeightFile::from_bytes(bytes, "model.safetensors").expect("a complete model of a valid config opens");
            assert_eq!(file.config(), &c);
            file.check_model().expect("a complete model passes check_model");
            let _ = Model::from_weight_file(file, Backend::Cpu, 1);
        }
    }
});
