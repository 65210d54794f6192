// LTEB / DLTFB adaptive tokens (spec 5, Eq. 4-8). At load time the learnable tokens are resized to each
// level's grid and passed through the projection conv once (both are linear, so they commute with the
// weighting): q [D, N, h*w] = proj(resize(P_i)). Per clip only the gate, its pooled embedding, the token
// weights and one fused weighting + residual kernel remain.

// e [T, D] = mean over h*w of sigmoid(g [D, T, h*w]); one block per (channel, slice).
extern "C" __global__ void gate_embedding(const float* g, float* e, int d, int t, int hw) {
    __shared__ float red[33];
    int ch = blockIdx.x / t, s = blockIdx.x % t;
    const float* plane = g + (long long)blockIdx.x * hw;
    float acc = 0.0f;
    for (int j = threadIdx.x; j < hw; j += blockDim.x) acc += sigmoidf(plane[j]);
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) e[s * d + ch] = acc / (float)hw;
}

// w [T, N] = softmax_N(Linear(D -> N)(e [T, D])); one block (one warp per token) per slice, N <= 32.
extern "C" __global__ void token_weights(const float* e, const float* lw, const float* lb, float* w, int d, int n) {
    __shared__ float logits[32];
    int s = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int i = warp; i < n; i += warps) {
        float acc = 0.0f;
        for (int j = lane; j < d; j += 32) acc += lw[i * d + j] * e[s * d + j];
        acc = warp_sum(acc);
        if (lane == 0) logits[i] = acc + lb[i];
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = logits[0];
        for (int i = 1; i < n; i++) m = fmaxf(m, logits[i]);
        float sum = 0.0f;
        for (int i = 0; i < n; i++) sum += expf(logits[i] - m);
        for (int i = 0; i < n; i++) w[s * n + i] = expf(logits[i] - m) / sum;
    }
}

// out [D, T, hw] = f * P'' + f (+ extra), P''[c, t, p] = sum_i w[t, i] * q[c, i, p]  (LTEB Eq. 8; with
// extra = the shift branch, DLTFB Eq. 11).
extern "C" __global__ void token_apply(const float* f, const float* q, const float* w, const float* extra, float* out,
                                       int d, int t, int n, int hw) {
    FOR_EACH(i, (long long)d * t * hw) {
        int p = i % hw, s = (i / hw) % t, ch = i / (hw * t);
        float pp = 0.0f;
        for (int k = 0; k < n; k++) pp += w[s * n + k] * q[((long long)ch * n + k) * hw + p];
        float fv = f[i];
        float v = fv * pp + fv;
        if (extra) v += extra[i];
        out[i] = v;
    }
}
