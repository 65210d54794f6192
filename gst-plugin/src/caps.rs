//! Caps of the saliency element's sink pads.
//!
//! Kept apart from the element so that negotiation can be tested now: the video pad takes the
//! raw formats decoders and cameras commonly produce (the element converts to RGB itself, which
//! avoids a `videoconvert` copy for the common cases); the audio pad takes exactly what the
//! VGGish front end consumes — 16 kHz mono — so resampling and downmixing happen upstream in
//! `audioresample`/`audioconvert`, which do them better than we would.
use gst_audio::AudioFormat;
use gst_video::VideoFormat;

/// Sample rate of the audio front end (VGGish log-mel).
pub const AUDIO_RATE: i32 = 16_000;

/// Raw video formats the element accepts (any size, any framerate).
pub const VIDEO_FORMATS: [VideoFormat; 6] = [
    VideoFormat::Rgb,
    VideoFormat::Rgba,
    VideoFormat::Bgrx,
    VideoFormat::Bgra,
    VideoFormat::I420,
    VideoFormat::Nv12,
];

/// Raw audio sample formats the element accepts.
pub const AUDIO_FORMATS: [AudioFormat; 2] = [AudioFormat::F32le, AudioFormat::S16le];

/// Caps of the video sink pad: `video/x-raw` in [`VIDEO_FORMATS`], any size and framerate.
pub fn video_sink_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(VIDEO_FORMATS)
        .build()
}

/// Caps of the audio sink pad: interleaved F32LE or S16LE, mono, 16 kHz.
pub fn audio_sink_caps() -> gst::Caps {
    gst_audio::AudioCapsBuilder::new_interleaved()
        .format_list(AUDIO_FORMATS)
        .channels(1)
        .rate(AUDIO_RATE)
        .build()
}
