// LayerNorm over the last axis of token matrices: one warp per row (8 a block; rows are 96-768 wide, so
// a block per row left a quarter of its threads idle and waited on two block-wide reductions), two passes
// (mean, then the biased variance of the centred values, as PyTorch). In place when x == y.
// layernorm_rows_h writes f16 (the operand of the fp16 GEMM that follows).
template <typename Out>
__device__ void layernorm_rows_impl(const float* x, Out* y, const float* gamma, const float* beta, int rows, int c, float eps) {
    const int lane = threadIdx.x & 31;
    const long long r = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float* row = x + r * c;
    Out* out = y + r * c;
    float s = 0.0f;
    for (int j = lane; j < c; j += 32) s += row[j];
    const float mean = warp_sum(s) / c;
    float q = 0.0f;
    for (int j = lane; j < c; j += 32) {
        const float d = row[j] - mean;
        q += d * d;
    }
    const float inv = rsqrtf(warp_sum(q) / c + eps);
    for (int j = lane; j < c; j += 32) {
        const float v = (row[j] - mean) * inv * gamma[j] + beta[j];
        if constexpr (sizeof(Out) == 2) out[j] = f32_to_f16(v); else out[j] = v;
    }
}

extern "C" __global__ void layernorm_rows(const float* x, float* y, const float* gamma, const float* beta, int rows, int c, float eps) {
    layernorm_rows_impl<float>(x, y, gamma, beta, rows, c, eps);
}

extern "C" __global__ void layernorm_rows_h(const float* x, half_bits* y, const float* gamma, const float* beta, int rows, int c, float eps) {
    layernorm_rows_impl<half_bits>(x, y, gamma, beta, rows, c, eps);
}
