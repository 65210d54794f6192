// LayerNorm over the last axis of token matrices: one block per row, two passes (mean, then the biased
// variance of the centred values, as PyTorch). In place when x == y.
extern "C" __global__ void layernorm_rows(const float* x, float* y, const float* gamma, const float* beta, int c, float eps) {
    __shared__ float red[33];
    const float* row = x + (long long)blockIdx.x * c;
    float* out = y + (long long)blockIdx.x * c;
    float s = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) s += row[j];
    float mean = block_sum(s, red) / c;
    float q = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        float d = row[j] - mean;
        q += d * d;
    }
    float inv = rsqrtf(block_sum(q, red) / c + eps);
    for (int j = threadIdx.x; j < c; j += blockDim.x) out[j] = (row[j] - mean) * inv * gamma[j] + beta[j];
}
