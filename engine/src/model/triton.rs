//! The Triton backend: each clip is sent to an NVIDIA Triton Inference Server over its gRPC API (KServe
//! v2 `ModelInfer`), which runs the model wherever it is deployed (TensorRT or ONNX Runtime on a GPU box,
//! many edge pipelines sharing it).
//!
//! Built with the cargo feature `triton` (tonic + prost client, `dtfsal-triton-proto`). Without it the
//! options exist (so callers compile either way) and loading says how to rebuild.
//!
//! The served model is a repository entry written by `dtfsal triton-repo` for an exported ONNX file: its
//! `config.pbtxt` carries the model config JSON as the parameter `dtfsal_config`, read here with the
//! `ModelConfig` RPC, so clip sizes and the variant need no local file. Inputs `video` [1,3,T,H,W] and
//! (AV) `audio` [1,9,1,112,192] are sent as raw little-endian FP32; the output `sal` [1,H,W] is read back.
//!
//! Errors keep the gRPC status as a [`TritonErrorKind`]: `Unavailable` (server down or restarting, model
//! not ready) and `DeadlineExceeded` (no answer within the timeout) are transient
//! ([`crate::model::ModelError::is_transient`]): the channel reconnects by itself on a later request.
//! `NotFound` (no such model or version) and `InvalidArgument` (tensors the model does not take) are not.

use std::time::Duration;

/// Where the model is served and how long a request may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TritonOptions {
    /// gRPC endpoint, `host:port` or `http://host:port` (Triton's default gRPC port is 8001).
    pub url: String,
    /// Model name in the server's repository.
    pub model: String,
    /// Model version; empty: the server's policy (the latest ready version).
    pub version: String,
    /// Deadline of each request (connect included); also sent to the server as `grpc-timeout`.
    pub timeout: Duration,
}

impl Default for TritonOptions {
    fn default() -> Self {
        Self { url: "127.0.0.1:8001".into(), model: "dtfsal".into(), version: String::new(), timeout: Duration::from_secs(10) }
    }
}

impl TritonOptions {
    /// The endpoint as a URI (`http://` added when no scheme is given).
    pub fn uri(&self) -> String {
        if self.url.contains("://") { self.url.clone() } else { format!("http://{}", self.url) }
    }

    /// `model `NAME`` or `model `NAME` version V`, for messages.
    pub fn model_label(&self) -> String {
        if self.version.is_empty() {
            format!("model `{}`", self.model)
        } else {
            format!("model `{}` version {}", self.model, self.version)
        }
    }
}

/// What kind of failure a Triton request met (the gRPC status code, grouped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TritonErrorKind {
    /// The model or version is not in the repository (`NOT_FOUND`).
    NotFound,
    /// The request does not fit the model (`INVALID_ARGUMENT`), or the served model is not a DTFSal
    /// repository entry.
    InvalidArgument,
    /// Server unreachable, restarting, or the model not ready (`UNAVAILABLE`): transient.
    Unavailable,
    /// No answer within the timeout (`DEADLINE_EXCEEDED`, or the client's own deadline): transient.
    DeadlineExceeded,
    /// Any other status (internal errors of the model, bad URL, ...).
    Other,
}

impl TritonErrorKind {
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable | Self::DeadlineExceeded)
    }
}

#[cfg(feature = "triton")]
pub(crate) use imp::TritonNet;

#[cfg(not(feature = "triton"))]
pub(crate) use stub::TritonNet;

#[cfg(not(feature = "triton"))]
mod stub {
    use super::TritonOptions;
    use crate::config::ModelConfig;
    use crate::model::{Clip, ModelError, SaliencyMap};

    /// Uninhabited: this build has no Triton client.
    pub(crate) enum TritonNet {}

    impl TritonNet {
        pub(crate) fn load(_opts: &TritonOptions) -> Result<(ModelConfig, Self), ModelError> {
            Err(ModelError::Triton {
                kind: super::TritonErrorKind::Other,
                message: "this build has no Triton client: rebuild with the cargo feature `triton` \
                          (e.g. `cargo build --release -p dtfsal-cli --features triton`)"
                    .into(),
            })
        }

        pub(crate) fn predict(&self, _cfg: &ModelConfig, _clip: &Clip) -> Result<SaliencyMap, ModelError> {
            match *self {}
        }
    }
}

#[cfg(feature = "triton")]
mod imp {
    use std::time::Duration;

    use dtfsal_triton_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
    use dtfsal_triton_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
    use dtfsal_triton_proto::inference::{DataType, ModelConfigRequest, ModelInferRequest, ModelReadyRequest};
    use tonic::transport::{Channel, Endpoint};

    use super::{TritonErrorKind, TritonOptions};
    use crate::config::ModelConfig;
    use crate::model::{Clip, ModelError, SaliencyMap};

    /// The config.pbtxt parameter holding the model config JSON (written by `dtfsal triton-repo`).
    const KEY_CONFIG: &str = "dtfsal_config";

    fn error(kind: TritonErrorKind, message: String) -> ModelError {
        ModelError::Triton { kind, message }
    }

    /// A gRPC status as an error naming the server, the model and what happened.
    fn status_error(opts: &TritonOptions, what: &str, s: &tonic::Status) -> ModelError {
        use tonic::Code;
        let (url, model) = (opts.uri(), opts.model_label());
        let detail = s.message();
        let (kind, message) = match s.code() {
            Code::NotFound => {
                (TritonErrorKind::NotFound, format!("{model} is not on the Triton server at {url} ({what}: {detail})"))
            }
            Code::InvalidArgument => {
                (TritonErrorKind::InvalidArgument, format!("Triton at {url} rejected the request to {model} ({what}: {detail})"))
            }
            Code::Unavailable => (
                TritonErrorKind::Unavailable,
                format!("Triton server at {url} unavailable for {model} ({what}: {detail}); is tritonserver running?"),
            ),
            Code::DeadlineExceeded => (
                TritonErrorKind::DeadlineExceeded,
                format!("Triton at {url}: {what} of {model} exceeded the deadline of {} ms ({detail})", opts.timeout.as_millis()),
            ),
            // the connection dropped while a request was on the wire (server killed or restarting)
            Code::Unknown if ["transport error", "h2 protocol error", "connection reset", "broken pipe"].iter().any(|t| detail.contains(t)) => (
                TritonErrorKind::Unavailable,
                format!("Triton server at {url} unavailable for {model} ({what}: connection lost: {detail}); is tritonserver running?"),
            ),
            // tonic's own connect / request timeouts
            Code::Cancelled if detail.contains("Timeout expired") => (
                TritonErrorKind::DeadlineExceeded,
                format!("Triton at {url}: {what} of {model} got no answer within {} ms (timeout-ms)", opts.timeout.as_millis()),
            ),
            // Triton answers a request for an unknown model with a generic status and this text
            Code::Unknown | Code::Internal if detail.contains("unknown model") || detail.contains("is not found") => {
                (TritonErrorKind::NotFound, format!("{model} is not on the Triton server at {url} ({what}: {detail})"))
            }
            c => (TritonErrorKind::Other, format!("Triton at {url}, {model}: {what} failed: {c:?}: {detail}")),
        };
        error(kind, message)
    }

    pub(crate) struct TritonNet {
        opts: TritonOptions,
        /// Drives the channel's connection; requests block on it from the caller's thread.
        rt: tokio::runtime::Runtime,
        /// Reconnects by itself after a failure (a later request dials again).
        channel: Channel,
        has_audio: bool,
    }

    impl TritonNet {
        pub(crate) fn load(opts: &TritonOptions) -> Result<(ModelConfig, Self), ModelError> {
            if opts.model.is_empty() {
                return Err(error(TritonErrorKind::InvalidArgument, "the triton backend needs a model name".into()));
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("dtfsal-triton-io")
                .enable_all()
                .build()
                .map_err(|e| error(TritonErrorKind::Other, format!("cannot start the Triton client's I/O thread: {e}")))?;
            let uri = opts.uri();
            let endpoint = Endpoint::from_shared(uri.clone())
                .map_err(|e| error(TritonErrorKind::InvalidArgument, format!("Triton server URL `{}`: {e}", opts.url)))?
                .connect_timeout(opts.timeout)
                .tcp_nodelay(true)
                // a dead server is noticed between requests too
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5));
            let channel = {
                let _guard = rt.enter();
                endpoint.connect_lazy()
            };
            let net = Self { opts: opts.clone(), rt, channel, has_audio: false };
            let cfg = net.fetch_config()?;
            Ok((cfg.clone(), Self { has_audio: cfg.variant.has_audio(), ..net }))
        }

        fn client(&self) -> GrpcInferenceServiceClient<Channel> {
            GrpcInferenceServiceClient::new(self.channel.clone()).max_decoding_message_size(256 << 20)
        }

        /// Runs one RPC with the deadline on both sides.
        fn call<T, F>(&self, what: &str, req: T, f: impl FnOnce(GrpcInferenceServiceClient<Channel>, tonic::Request<T>) -> F) -> Result<F::Output, ModelError>
        where
            F: std::future::Future,
        {
            let mut request = tonic::Request::new(req);
            request.set_timeout(self.opts.timeout);
            let fut = f(self.client(), request);
            self.rt.block_on(async { tokio::time::timeout(self.opts.timeout, fut).await }).map_err(|_| {
                error(
                    TritonErrorKind::DeadlineExceeded,
                    format!(
                        "Triton at {}: {what} of {} got no answer within {} ms (timeout-ms)",
                        self.opts.uri(),
                        self.opts.model_label(),
                        self.opts.timeout.as_millis()
                    ),
                )
            })
        }

        /// Checks the model is ready and reads its config (`dtfsal_config`, tensors).
        fn fetch_config(&self) -> Result<ModelConfig, ModelError> {
            let o = &self.opts;
            let ready = ModelReadyRequest { name: o.model.clone(), version: o.version.clone() };
            let ready = self
                .call("ModelReady", ready, |mut c, r| async move { c.model_ready(r).await })?
                .map_err(|s| status_error(o, "ModelReady", &s))?
                .into_inner();
            let req = ModelConfigRequest { name: o.model.clone(), version: o.version.clone() };
            let resp = self
                .call("ModelConfig", req, |mut c, r| async move { c.model_config(r).await })?
                .map_err(|s| status_error(o, "ModelConfig", &s))?
                .into_inner();
            if !ready.ready {
                return Err(error(
                    TritonErrorKind::Unavailable,
                    format!("{} on the Triton server at {} is not ready (see the server log)", o.model_label(), o.uri()),
                ));
            }
            let mc = resp.config.ok_or_else(|| {
                error(TritonErrorKind::Other, format!("Triton at {} sent no config for {}", o.uri(), o.model_label()))
            })?;
            let bad = |why: String| {
                error(
                    TritonErrorKind::InvalidArgument,
                    format!("{} on the Triton server at {}: {why}", o.model_label(), o.uri()),
                )
            };
            let json = mc.parameters.get(KEY_CONFIG).map(|p| p.string_value.clone()).ok_or_else(|| {
                bad(format!(
                    "its config.pbtxt has no parameter `{KEY_CONFIG}` (write the repository with \
                     `dtfsal triton-repo --onnx M.onnx --out REPO`)"
                ))
            })?;
            let cfg = ModelConfig::from_json(&json).map_err(|e| bad(format!("parameter `{KEY_CONFIG}`: {e}")))?;
            let want_video = vec![1, 3, cfg.clip_len as i64, cfg.height as i64, cfg.width as i64];
            let mut want: Vec<(&str, Vec<i64>)> = vec![("video", want_video)];
            if cfg.variant.has_audio() {
                want.push(("audio", vec![1, cfg.audio_slices as i64, 1, cfg.audio_height as i64, cfg.audio_width as i64]));
            }
            for (name, dims) in &want {
                let Some(t) = mc.input.iter().find(|t| t.name == *name) else {
                    return Err(bad(format!("no input `{name}` (it has {:?})", mc.input.iter().map(|t| &t.name).collect::<Vec<_>>())));
                };
                if t.data_type != DataType::TypeFp32 as i32 || t.dims != *dims {
                    return Err(bad(format!("input `{name}` is {:?} of type {}, expected {dims:?} FP32", t.dims, t.data_type)));
                }
            }
            if !mc.output.iter().any(|t| t.name == "sal") {
                return Err(bad("no output `sal`".into()));
            }
            Ok(cfg)
        }

        pub(crate) fn predict(&self, cfg: &ModelConfig, clip: &Clip) -> Result<SaliencyMap, ModelError> {
            let o = &self.opts;
            let tensor = |name: &str, shape: &[usize]| {
                let mut s = vec![1i64];
                s.extend(shape.iter().map(|&d| d as i64));
                InferInputTensor { name: name.into(), datatype: "FP32".into(), shape: s, ..Default::default() }
            };
            let mut inputs = vec![tensor("video", clip.video.shape())];
            let mut raw = vec![f32_bytes(clip.video.data())];
            if self.has_audio {
                let a = clip
                    .audio
                    .as_ref()
                    .ok_or_else(|| ModelError::Input { tensor: "input/audio", reason: "required by the audio-visual model, absent".into() })?;
                inputs.push(tensor("audio", a.shape()));
                raw.push(f32_bytes(a.data()));
            }
            let req = ModelInferRequest {
                model_name: o.model.clone(),
                model_version: o.version.clone(),
                inputs,
                outputs: vec![InferRequestedOutputTensor { name: "sal".into(), ..Default::default() }],
                raw_input_contents: raw,
                ..Default::default()
            };
            let resp = self
                .call("ModelInfer", req, |mut c, r| async move { c.model_infer(r).await })?
                .map_err(|s| status_error(o, "ModelInfer", &s))?
                .into_inner();
            let (h, w) = (cfg.height, cfg.width);
            let bad = |why: String| error(TritonErrorKind::Other, format!("Triton at {}, {}: {why}", o.uri(), o.model_label()));
            let i = resp.outputs.iter().position(|t| t.name == "sal").ok_or_else(|| bad("no output `sal` in the response".into()))?;
            let data: Vec<f32> = match resp.raw_output_contents.get(i) {
                Some(bytes) => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                None => resp.outputs[i].contents.as_ref().map(|c| c.fp32_contents.clone()).unwrap_or_default(),
            };
            if data.len() != h * w {
                return Err(bad(format!(
                    "output `sal` has {} values (shape {:?}), expected [1, {h}, {w}]",
                    data.len(),
                    resp.outputs[i].shape
                )));
            }
            Ok(SaliencyMap { width: w, height: h, data })
        }
    }

    /// Little-endian bytes of an f32 slice (KServe v2 raw FP32 contents).
    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * 4);
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }
}
