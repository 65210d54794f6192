//! Regression tests for the crashes the fuzz targets found (`fuzz/`, `scripts/fuzz.sh`): each test
//! reproduces the condition of one crash through the public API. The crashing fuzz inputs
//! themselves are in `fuzz/corpus/<target>/` and are replayed by every fuzz run.

use dtfsal_engine::config::{MAX_DEPTH, MAX_SIZE, ModelConfig, Variant};
use dtfsal_engine::model::{Backend, Clip, Model};
use dtfsal_engine::ops::conv::Conv3d;
use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::weights::{self, Part, StorageDtype, WeightError, WeightFile, expected_tensors};

/// `weights_loader`: `expected_tensors` of a config with zero heads divided by zero (its docs
/// promise no panic for an invalid config).
#[test]
fn expected_tensors_of_an_invalid_config_is_empty() {
    let mut c = ModelConfig::tiny(Variant::AudioVisual);
    c.stage_heads = [1, 0, 2, 4];
    assert!(expected_tensors(&c).is_empty());
    let mut c = ModelConfig::tiny(Variant::AudioVisual);
    c.neck_dim = usize::MAX / 2;
    c.stage_depths = [usize::MAX, 1, 1, 1];
    assert!(expected_tensors(&c).is_empty());
    assert!(!expected_tensors(&ModelConfig::tiny(Variant::AudioVisual)).is_empty());
}

/// A weight file with the given config JSON (one dummy tensor).
fn file_with_config(json: String) -> Result<WeightFile, WeightError> {
    let mut meta = weights::metadata_for(&ModelConfig::tiny(Variant::Visual), Part::Model);
    meta.insert(weights::KEY_CONFIG.into(), json);
    let data = 1.0f32.to_le_bytes();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    let bytes = safetensors::serialize([("t", view)], Some(meta)).unwrap();
    WeightFile::from_bytes(bytes, "absurd.safetensors")
}

/// `weights_loader`: sizes whose shape arithmetic overflows (`3 * dim`, `2 * neck_dim`) or whose
/// tensor list cannot be allocated (a stage of 2^40 blocks) passed validation, so a file with such a
/// config opened and `check_model` / `Model::load` panicked or aborted. They are now rejected when
/// the file opens, naming the field.
#[test]
fn absurd_sizes_in_a_weight_file_config_are_rejected_by_name() {
    let tiny = ModelConfig::tiny(Variant::Visual);
    let cases: [(&str, Box<dyn Fn(&mut ModelConfig)>); 4] = [
        ("neck_dim", Box::new(|c| c.neck_dim = 1 << 62)),
        ("stage_depths", Box::new(|c| c.stage_depths[2] = 1 << 40)),
        ("te_heads", Box::new(|c| c.te_heads = usize::MAX)),
        ("token_count", Box::new(|c| c.token_count = MAX_SIZE + 1)),
    ];
    for (field, edit) in cases {
        let mut c = tiny.clone();
        edit(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(field) && e.contains("unreasonably large"), "{e}");
        let e = file_with_config(c.to_json()).unwrap_err();
        assert!(matches!(e, WeightError::Config { .. }), "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    // The limits leave every real model valid.
    let mut c = tiny.clone();
    c.stage_depths = [1, 1, MAX_DEPTH, 1];
    c.validate().unwrap();
}

/// `element_harness`: a conv whose padding is wider than its input (the 5x5 `amfb.*.glob` conv
/// on the 1x1 deepest level of a 32x32 model) computed `a + dx - pw` for an empty run of input
/// columns and underflowed (a panic in the inference thread).
#[test]
fn conv_over_an_input_narrower_than_its_padding() {
    // 1 -> 1 channel, kernel 1x5x5, pad 0x2x2, on 1x1x1 and 1x1x3 inputs.
    let weight: Vec<f32> = (0..25).map(|i| i as f32).collect();
    let conv = Conv3d::new(Tensor::from_vec(&[1, 1, 1, 5, 5], weight), Some(vec![0.5]), [1, 1, 1], [0, 2, 2], 1);
    let y = conv.forward(&Tensor::from_vec(&[1, 1, 1, 1], vec![2.0]));
    assert_eq!(y.shape(), [1, 1, 1, 1]);
    // only the centre tap (index 12) sees the input
    assert_eq!(y.data(), [2.0 * 12.0 + 0.5]);
    let y = conv.forward(&Tensor::from_vec(&[1, 1, 1, 3], vec![1.0, 2.0, 3.0]));
    assert_eq!(y.shape(), [1, 1, 1, 3]);
    // output column o sees input column i through tap (2, 2 + i - o)
    let want: Vec<f32> =
        (0..3).map(|o| (0..3).map(|i| (i + 1) as f32 * (10 + 2 + i - o) as f32).sum::<f32>() + 0.5).collect();
    assert_eq!(y.data(), want);
}

/// The same crash end to end: a valid 32x32 model (deepest level 1x1) predicts a finite map.
#[test]
fn a_32x32_model_runs() {
    let c = ModelConfig::micro(Variant::AudioVisual);
    let specs = expected_tensors(&c);
    let data: Vec<Vec<f32>> = specs
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let v = if name.ends_with("running_var") { 1.0 } else { 0.01 };
            (0..n).map(|i| v + (i % 7) as f32 * 0.001).collect()
        })
        .collect();
    let bytes = weights::to_bytes(
        &c,
        Part::Model,
        specs.iter().zip(&data).map(|((n, s), d)| (n.as_str(), &s[..], &d[..])),
        StorageDtype::F32,
    )
    .unwrap();
    let model = Model::from_weight_file(WeightFile::from_bytes(bytes, "micro").unwrap(), Backend::Cpu, 1).unwrap();
    let clip = Clip {
        video: Tensor::zeros(&[3, c.clip_len, c.height, c.width]),
        audio: Some(Tensor::zeros(&[c.audio_slices, 1, c.audio_height, c.audio_width])),
    };
    let map = model.predict(&clip).unwrap();
    assert_eq!((map.width, map.height), (32, 32));
    assert!(map.data.iter().all(|v| v.is_finite()));
}

/// `weights_loader`: a config read back from its JSON differed in the last bit of a float
/// (`stage_norm_eps` 7.688942476233677e-305 came back ...678e-305): serde_json's default float
/// parser is not exact. The workspace enables its `float_roundtrip` feature.
#[test]
fn config_floats_survive_the_json_round_trip() {
    let mut c = ModelConfig::tiny(Variant::AudioVisual);
    for eps in [7.688942476233677e-305, 1e-6, 1e-5, f64::MIN_POSITIVE, 5e-324, 0.1 + 0.2, f64::MAX] {
        c.stage_norm_eps = eps;
        c.validate().unwrap();
        let back = ModelConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(back.stage_norm_eps.to_bits(), eps.to_bits(), "{eps:e}");
    }
}

/// `audio_frontend`: a `discont_threshold` above `i64::MAX` turned negative, so a chunk stamped
/// before the head counted as a "gap" of about 2^64 samples and moved the head back to the chunk.
/// The timeline is append-only whatever the threshold.
#[test]
fn huge_discont_threshold_keeps_the_timeline_append_only() {
    use dtfsal_engine::audio::{FrontendConfig, LogMelFrontend};
    for threshold in [u64::MAX, 1 << 63, i64::MAX as u64, 18374743864746442751] {
        let mut fe = LogMelFrontend::new(FrontendConfig { discont_threshold: threshold, ..FrontendConfig::default() });
        fe.push(None, &vec![0.25; 20_000]);
        let outcome = fe.push_at(Some(0), &[]);
        assert_eq!(fe.head_sample(), Some(20_000), "threshold {threshold}: {outcome:?}");
        // every deviation is jitter: appended at the head
        let outcome = fe.push_at(Some(i64::MAX), &[0.5; 10]);
        assert_eq!(outcome.gap_samples, 0);
        assert_eq!(fe.head_sample(), Some(20_010));
    }
}

/// `element_harness`: an empty GAP audio buffer of 1000 hours became 5.8e10 zero samples and
/// aborted; `push_silence` takes silence without materialising it and equals pushing the zeros.
#[test]
fn push_silence_equals_pushing_zeros() {
    use dtfsal_engine::audio::{CLIP_AUDIO_LEN, LogMelFrontend};
    let tone: Vec<f32> = (0..30_000).map(|k| (k as f32 * 0.05).sin() * 0.3).collect();
    for (pts, n) in [(None, 5_000u64), (Some(2_000_000_000u64), 70_000), (Some(1_000_000_000), 100)] {
        let mut a = LogMelFrontend::default();
        let mut b = LogMelFrontend::default();
        a.push(None, &tone);
        b.push(None, &tone);
        let oa = a.push_silence(pts, n);
        let ob = b.push(pts, &vec![0.0; n as usize]);
        assert_eq!(oa, ob);
        a.push(None, &tone);
        b.push(None, &tone);
        assert_eq!(a.head_sample(), b.head_sample());
        for centre_ms in [1_000u64, 2_500, 4_000, 6_000, 9_000] {
            let (wa, ca) = a.clip_audio(centre_ms * 1_000_000);
            let (wb, cb) = b.clip_audio(centre_ms * 1_000_000);
            assert_eq!((wa.len(), ca), (CLIP_AUDIO_LEN, cb));
            assert!(wa.iter().zip(&wb).all(|(x, y)| x.to_bits() == y.to_bits()), "window at {centre_ms} ms");
        }
    }
    // 1000 hours of silence: immediate, and the next audio lands after it
    let mut fe = LogMelFrontend::default();
    fe.push(None, &tone);
    let t = std::time::Instant::now();
    fe.push_silence(None, 1000 * 3600 * 16_000);
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(fe.head_sample(), Some(30_000 + 1000 * 3600 * 16_000));
}

/// `audio_frontend`: every `push_silence` may add up to 2^60 samples, so a dozen of them (GAP buffers of a
/// stream whose timestamps run away) overflowed the sample timeline (`ring.rs`: attempt to add with
/// overflow). Silence now stops moving the head at 2^62 samples; audio pushed after it still appends and
/// gives finite windows.
#[test]
fn endless_silence_saturates_the_timeline() {
    use dtfsal_engine::audio::{CLIP_AUDIO_LEN, LogMelFrontend};
    let mut fe = LogMelFrontend::default();
    fe.push(None, &[0.25; 4_000]);
    for _ in 0..16 {
        fe.push_silence(None, u64::MAX);
        fe.push_silence(Some(u64::MAX), 1 << 60);
    }
    let head = fe.head_sample().unwrap();
    assert_eq!(head, 1 << 62);
    fe.push(None, &[0.5; 20_000]);
    assert_eq!(fe.head_sample(), Some(head + 20_000));
    let (window, _) = fe.clip_audio(u64::MAX);
    assert_eq!(window.len(), CLIP_AUDIO_LEN);
    assert!(window.iter().all(|v| v.is_finite()));
}
