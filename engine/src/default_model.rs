//! The default model, embedded in the binary so that the element and the CLI work with no file to
//! find: `models/dtfsal-tiny-av-synth.safetensors` (tiny AV, f16, ~2.4 MB), a *demo* model trained
//! on the synthetic audio-visual scenes of `python -m dtfsal.synth` (see `models/README.md`, its
//! model card). It knows synthetic scenes, not human attention.
use std::path::PathBuf;

use crate::weights::{WeightError, WeightFile};

/// The weight file's bytes.
pub static BYTES: &[u8] = include_bytes!("../../models/dtfsal-tiny-av-synth.safetensors");

/// The name the default model goes by in messages and in the element's `model` property.
pub const NAME: &str = "dtfsal-tiny-av-synth (embedded)";

/// The embedded weight file, validated like one read from disk.
pub fn weight_file() -> Result<WeightFile, WeightError> {
    WeightFile::from_bytes(BYTES.to_vec(), PathBuf::from(NAME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Model};
    use crate::weights::{Part, expected_tensors};

    #[test]
    fn embedded_model_is_a_complete_tiny_av_model() {
        let f = weight_file().unwrap();
        assert_eq!(f.part(), Part::Model);
        f.check(&expected_tensors(f.config())).unwrap();
        assert!(f.config().variant.has_audio());
        let m = Model::load_default(Backend::Cpu, 1).unwrap();
        assert_eq!((m.config().height, m.config().width), (96, 160));
    }
}
