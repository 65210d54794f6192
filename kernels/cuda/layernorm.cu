// LayerNorm over the last axis of token matrices: one block per row, two passes (mean, then the biased
// variance of the centred values, as PyTorch). In place when x == y. layernorm_rows_h writes f16 (the
// operand of the fp16 GEMM that follows).
template <typename Out>
__device__ void layernorm_rows_impl(const float* x, Out* y, const float* gamma, const float* beta, int c, float eps) {
    __shared__ float red[33];
    const float* row = x + (long long)blockIdx.x * c;
    Out* out = y + (long long)blockIdx.x * c;
    float s = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) s += row[j];
    float mean = block_sum(s, red) / c;
    float q = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        float d = row[j] - mean;
        q += d * d;
    }
    float inv = rsqrtf(block_sum(q, red) / c + eps);
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        const float v = (row[j] - mean) * inv * gamma[j] + beta[j];
        if constexpr (sizeof(Out) == 2) out[j] = f32_to_f16(v); else out[j] = v;
    }
}

extern "C" __global__ void layernorm_rows(const float* x, float* y, const float* gamma, const float* beta, int c, float eps) {
    layernorm_rows_impl<float>(x, y, gamma, beta, c, eps);
}

extern "C" __global__ void layernorm_rows_h(const float* x, half_bits* y, const float* gamma, const float* beta, int c, float eps) {
    layernorm_rows_impl<half_bits>(x, y, gamma, beta, c, eps);
}
