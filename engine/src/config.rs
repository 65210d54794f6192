//! The model configuration stored in a weight file's metadata.
//!
//! One JSON object fixes every size the model needs, so a weight file carries
//! everything required to rebuild the network (and to check the file's tensor
//! list, see [`crate::weights::expected_tensors`]). Field names follow the
//! PyTorch reference model; unknown fields are ignored so that newer writers can
//! add information without breaking older readers.
use serde::{Deserialize, Serialize};

/// Which model is stored: audio-visual DTFSal or the visual-only DTFSal(V).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Variant {
    /// Audio-visual model (VGGish branch, temporal enhancement and AMFBs).
    #[serde(rename = "av")]
    AudioVisual,
    /// Visual-only model: no `audio.*` and no `amfb.*` tensors.
    #[serde(rename = "v")]
    Visual,
}

impl Variant {
    /// The spelling used in the config JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::AudioVisual => "av",
            Variant::Visual => "v",
        }
    }

    /// Whether this variant has the audio branch and the AMFBs.
    pub fn has_audio(self) -> bool {
        self == Variant::AudioVisual
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the aligned audio enters an AMFB's adaptive (deformable) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmfbAudioMode {
    /// `X = F + A_i` (spec default).
    Add,
    /// `X = [F; A_i]`: doubles the input channels of the deformable conv and its offset conv.
    Concat,
}

/// Every size of the DTFSal network (spec §1–§9). See [`ModelConfig::full`] for the paper model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Free-form name of the configuration (`"full"` for the paper model).
    pub name: String,
    /// Audio-visual or visual-only.
    pub variant: Variant,
    /// Frames per clip; must be 32 (decoder time arithmetic 16 → 8 → 4 → 2 → 1).
    pub clip_len: usize,
    /// Model input height in pixels (multiple of 32).
    pub height: usize,
    /// Model input width in pixels (multiple of 32).
    pub width: usize,
    /// MViTv2 patch-embedding width (stage 0 channels).
    pub embed_dim: usize,
    /// Number of MultiscaleBlocks per stage.
    pub stage_depths: [usize; 4],
    /// Attention heads per stage.
    pub stage_heads: [usize; 4],
    /// The spatial size the MViTv2 was built for (sizes its rel-pos tables).
    pub mvit_spatial_size: [usize; 2],
    /// The temporal size the MViTv2 was built for (sizes `rel_pos_t`).
    pub mvit_temporal_size: usize,
    /// LayerNorm eps of the stage norms.
    pub stage_norm_eps: f64,
    /// Channel width of the neck, LTEB/DLTFB and AMFB.
    pub neck_dim: usize,
    /// Number of learnable tokens per LTEB (N).
    pub token_count: usize,
    /// Spatial size of the learnable tokens.
    pub token_size: [usize; 2],
    /// Output channels of the three transposed-conv stages of each decoder.
    pub decoder_dims: [usize; 3],
    /// Number of log-mel examples per clip.
    pub audio_slices: usize,
    /// Height (time rows) of one resized log-mel example.
    pub audio_height: usize,
    /// Width (mel columns) of one resized log-mel example.
    pub audio_width: usize,
    /// Output channels of the six VGGish convolutions.
    pub vggish_channels: [usize; 6],
    /// Attention heads of the audio temporal enhancement.
    pub te_heads: usize,
    /// Head width of the audio temporal enhancement.
    pub te_dim_head: usize,
    /// Hidden width of the temporal enhancement MLP.
    pub te_mlp_dim: usize,
    /// Whether the temporal enhancement uses its patch embedding (DiffSal's code skips it).
    pub te_use_patch_embed: bool,
    /// How audio enters the AMFB adaptive stream.
    pub amfb_audio_mode: AmfbAudioMode,
    /// Per-channel RGB mean on the 0–255 scale.
    pub video_mean: [f32; 3],
    /// Per-channel RGB standard deviation on the 0–255 scale.
    pub video_std: [f32; 3],
    /// Index within the clip of the frame the saliency map labels.
    pub label_frame: usize,
}

/// Largest size (channels, pixels, heads, slices) a valid config may have: far above any real
/// model, small enough that no shape arithmetic can overflow.
pub const MAX_SIZE: usize = 1 << 20;
/// Most MultiscaleBlocks a valid config may have per stage (MViTv2-L has 48 in all).
pub const MAX_DEPTH: usize = 1 << 10;

/// A configuration that cannot describe a DTFSal network.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON is malformed, misses a field or has a value of the wrong type.
    #[error("config JSON: field `{field}`: {reason}")]
    Json {
        /// Path of the offending field (`.` when it is the document itself).
        field: String,
        /// What serde reported.
        reason: String,
    },
    /// A field parsed but its value is not usable.
    #[error("config field `{field}`: {reason}")]
    Invalid {
        /// Name of the offending field.
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
}

impl ModelConfig {
    /// The real-time CPU config (`tiny()` of python/dtfsal/config.py, the committed tests/data weights):
    /// the same architecture, narrower and shallower, at 96×160.
    pub fn tiny(variant: Variant) -> Self {
        ModelConfig {
            name: "tiny".into(),
            height: 96,
            width: 160,
            embed_dim: 24,
            stage_depths: [1, 1, 2, 1],
            stage_heads: [1, 1, 2, 4],
            mvit_spatial_size: [96, 96],
            mvit_temporal_size: 16,
            neck_dim: 32,
            token_size: [3, 5],
            decoder_dims: [16, 8, 4],
            vggish_channels: [8, 16, 32, 32, 64, 64],
            te_heads: 2,
            te_dim_head: 16,
            te_mlp_dim: 64,
            ..ModelConfig::full(variant)
        }
    }

    /// The smallest valid model: the tiny architecture at 32×32 with a few channels (its deepest level
    /// is 1×1). A clip costs milliseconds: for fuzzing the element and for tests of edge geometry.
    pub fn micro(variant: Variant) -> Self {
        ModelConfig {
            name: "micro".into(),
            height: 32,
            width: 32,
            embed_dim: 8,
            stage_depths: [1, 1, 1, 1],
            stage_heads: [1, 1, 1, 1],
            mvit_spatial_size: [32, 32],
            neck_dim: 8,
            token_count: 2,
            token_size: [1, 1],
            decoder_dims: [4, 4, 4],
            vggish_channels: [2, 2, 4, 4, 8, 8],
            te_heads: 1,
            te_dim_head: 8,
            te_mlp_dim: 8,
            ..ModelConfig::tiny(variant)
        }
    }

    /// The paper model (spec §1–§9): 32×224×384 clips, MViTv2-S, 9 VGGish slices.
    pub fn full(variant: Variant) -> Self {
        ModelConfig {
            name: "full".into(),
            variant,
            clip_len: 32,
            height: 224,
            width: 384,
            embed_dim: 96,
            stage_depths: [1, 2, 11, 2],
            stage_heads: [1, 2, 4, 8],
            mvit_spatial_size: [224, 224],
            mvit_temporal_size: 16,
            stage_norm_eps: 1e-6,
            neck_dim: 192,
            token_count: 5,
            token_size: [7, 12],
            decoder_dims: [96, 48, 24],
            audio_slices: 9,
            audio_height: 112,
            audio_width: 192,
            vggish_channels: [64, 128, 256, 256, 512, 512],
            te_heads: 2,
            te_dim_head: 64,
            te_mlp_dim: 256,
            te_use_patch_embed: true,
            amfb_audio_mode: AmfbAudioMode::Add,
            video_mean: [114.7748, 107.7354, 99.475],
            // The spec's values verbatim (STAViS loader), although f32 keeps only ~7 digits.
            #[allow(clippy::excessive_precision)]
            video_std: [38.7568578, 37.88248729, 40.02898126],
            label_frame: 16,
        }
    }

    /// Parses and validates a config JSON document. Errors name the offending field.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let config: ModelConfig =
            serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Json {
                field: e.path().to_string(),
                reason: e.inner().to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The config as the JSON string stored in weight-file metadata.
    pub fn to_json(&self) -> String {
        // Serialising a plain struct of numbers, strings and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Channels of MViTv2 stage `s` (0..4): `embed_dim · 2^s`.
    pub fn stage_dim(&self, s: usize) -> usize {
        self.embed_dim << s
    }

    /// Channels of the audio features (last VGGish conv), the temporal enhancement width.
    pub fn audio_dim(&self) -> usize {
        self.vggish_channels[5]
    }

    /// Total number of MultiscaleBlocks.
    pub fn num_blocks(&self) -> usize {
        self.stage_depths.iter().sum()
    }

    /// Checks every constraint the network's shape arithmetic relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        }
        fn positive(field: &'static str, values: &[usize]) -> Result<(), ConfigError> {
            if values.contains(&0) {
                return bad(field, format!("all values must be > 0, got {values:?}"));
            }
            Ok(())
        }
        if self.clip_len != 32 {
            return bad(
                "clip_len",
                format!(
                    "must be 32 (decoder time arithmetic), got {}",
                    self.clip_len
                ),
            );
        }
        for (field, v) in [("height", self.height), ("width", self.width)] {
            if v == 0 || !v.is_multiple_of(32) {
                return bad(field, format!("must be a positive multiple of 32, got {v}"));
            }
        }
        positive("embed_dim", &[self.embed_dim])?;
        positive("stage_depths", &self.stage_depths)?;
        positive("stage_heads", &self.stage_heads)?;
        // Guard the shift in stage_dim, the shape arithmetic of the expected tensor list and its
        // length (one set of tensors per block) against absurd values.
        for (field, values, limit) in [
            ("height", &[self.height][..], MAX_SIZE),
            ("width", &[self.width], MAX_SIZE),
            ("embed_dim", &[self.embed_dim], MAX_SIZE),
            ("stage_depths", &self.stage_depths, MAX_DEPTH),
            ("stage_heads", &self.stage_heads, MAX_SIZE),
            ("mvit_spatial_size", &self.mvit_spatial_size, MAX_SIZE),
            ("mvit_temporal_size", &[self.mvit_temporal_size], MAX_SIZE),
            ("neck_dim", &[self.neck_dim], MAX_SIZE),
            ("token_count", &[self.token_count], MAX_SIZE),
            ("token_size", &self.token_size, MAX_SIZE),
            ("decoder_dims", &self.decoder_dims, MAX_SIZE),
            ("audio_slices", &[self.audio_slices], MAX_SIZE),
            ("audio_height", &[self.audio_height], MAX_SIZE),
            ("audio_width", &[self.audio_width], MAX_SIZE),
            ("vggish_channels", &self.vggish_channels, MAX_SIZE),
            ("te_heads", &[self.te_heads], MAX_SIZE),
            ("te_dim_head", &[self.te_dim_head], MAX_SIZE),
            ("te_mlp_dim", &[self.te_mlp_dim], MAX_SIZE),
        ] {
            if let Some(v) = values.iter().find(|&&v| v > limit) {
                return bad(field, format!("unreasonably large: {v} (at most {limit})"));
            }
        }
        for s in 0..4 {
            let (dim, heads) = (self.stage_dim(s), self.stage_heads[s]);
            if !dim.is_multiple_of(heads) {
                return bad(
                    "stage_heads",
                    format!("stage {s} width {dim} is not divisible by {heads} heads"),
                );
            }
        }
        for v in self.mvit_spatial_size {
            if v == 0 || !v.is_multiple_of(32) {
                return bad(
                    "mvit_spatial_size",
                    format!(
                        "must be positive multiples of 32, got {:?}",
                        self.mvit_spatial_size
                    ),
                );
            }
        }
        if self.mvit_temporal_size < 2 || !self.mvit_temporal_size.is_multiple_of(2) {
            return bad(
                "mvit_temporal_size",
                format!("must be even and >= 2, got {}", self.mvit_temporal_size),
            );
        }
        if !(self.stage_norm_eps.is_finite() && self.stage_norm_eps > 0.0) {
            return bad(
                "stage_norm_eps",
                format!("must be finite and > 0, got {}", self.stage_norm_eps),
            );
        }
        positive("neck_dim", &[self.neck_dim])?;
        positive("token_count", &[self.token_count])?;
        positive("token_size", &self.token_size)?;
        positive("decoder_dims", &self.decoder_dims)?;
        positive("audio_slices", &[self.audio_slices])?;
        for (field, v) in [
            ("audio_height", self.audio_height),
            ("audio_width", self.audio_width),
        ] {
            if v == 0 || !v.is_multiple_of(16) {
                return bad(
                    field,
                    format!("must be a positive multiple of 16 (four VGGish max-pools), got {v}"),
                );
            }
        }
        positive("vggish_channels", &self.vggish_channels)?;
        positive("te_heads", &[self.te_heads])?;
        positive("te_dim_head", &[self.te_dim_head])?;
        positive("te_mlp_dim", &[self.te_mlp_dim])?;
        if self.video_mean.iter().any(|m| !m.is_finite()) {
            return bad(
                "video_mean",
                format!("must be finite, got {:?}", self.video_mean),
            );
        }
        if self.video_std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(
                "video_std",
                format!("must be finite and > 0, got {:?}", self.video_std),
            );
        }
        if self.label_frame >= self.clip_len {
            return bad(
                "label_frame",
                format!(
                    "must be < clip_len {}, got {}",
                    self.clip_len, self.label_frame
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_matches_the_committed_tiny_weights() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tiny-av.weights.safetensors");
        let file = crate::weights::WeightFile::open(&path).expect("committed tiny weights");
        assert_eq!(&ModelConfig::tiny(Variant::AudioVisual), file.config());
        ModelConfig::tiny(Variant::Visual).validate().expect("tiny v is valid");
        ModelConfig::micro(Variant::AudioVisual).validate().expect("micro av is valid");
    }

    const FULL_JSON: &str = r#"{"name":"full","variant":"av","clip_len":32,"height":224,"width":384,"embed_dim":96,"stage_depths":[1,2,11,2],"stage_heads":[1,2,4,8],"mvit_spatial_size":[224,224],"mvit_temporal_size":16,"stage_norm_eps":1e-6,"neck_dim":192,"token_count":5,"token_size":[7,12],"decoder_dims":[96,48,24],"audio_slices":9,"audio_height":112,"audio_width":192,"vggish_channels":[64,128,256,256,512,512],"te_heads":2,"te_dim_head":64,"te_mlp_dim":256,"te_use_patch_embed":true,"amfb_audio_mode":"add","video_mean":[114.7748,107.7354,99.475],"video_std":[38.7568578,37.88248729,40.02898126],"label_frame":16}"#;

    #[test]
    fn full_json_parses_to_full() {
        assert_eq!(
            ModelConfig::from_json(FULL_JSON).unwrap(),
            ModelConfig::full(Variant::AudioVisual)
        );
    }

    #[test]
    fn json_round_trip_and_unknown_fields() {
        let c = ModelConfig::full(Variant::Visual);
        assert_eq!(ModelConfig::from_json(&c.to_json()).unwrap(), c);
        let extra = FULL_JSON.replacen('{', r#"{"future_field":[1,2],"#, 1);
        assert!(ModelConfig::from_json(&extra).is_ok());
    }

    #[test]
    fn json_errors_name_the_field() {
        let missing = FULL_JSON.replace(r#""neck_dim":192,"#, "");
        let e = ModelConfig::from_json(&missing).unwrap_err().to_string();
        assert!(e.contains("neck_dim"), "{e}");
        let wrong = FULL_JSON.replace(r#""stage_depths":[1,2,11,2]"#, r#""stage_depths":[1,2,11]"#);
        let e = ModelConfig::from_json(&wrong).unwrap_err().to_string();
        assert!(e.contains("stage_depths"), "{e}");
        let variant = FULL_JSON.replace(r#""variant":"av""#, r#""variant":"audio""#);
        let e = ModelConfig::from_json(&variant).unwrap_err().to_string();
        assert!(e.contains("variant"), "{e}");
        let e = ModelConfig::from_json("not json").unwrap_err().to_string();
        assert!(e.contains("config JSON"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = ModelConfig::full(Variant::AudioVisual);
        c.height = 225;
        assert!(c.validate().unwrap_err().to_string().contains("height"));
        let mut c = ModelConfig::full(Variant::AudioVisual);
        c.clip_len = 16;
        assert!(c.validate().unwrap_err().to_string().contains("clip_len"));
        let mut c = ModelConfig::full(Variant::AudioVisual);
        c.stage_heads = [1, 2, 5, 8];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("stage_heads")
        );
        let mut c = ModelConfig::full(Variant::AudioVisual);
        c.video_std[1] = 0.0;
        assert!(c.validate().unwrap_err().to_string().contains("video_std"));
        let mut c = ModelConfig::full(Variant::AudioVisual);
        c.label_frame = 32;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("label_frame")
        );
    }
}
