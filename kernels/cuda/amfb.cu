// AMFB tri-stream score and weighted fusion (spec 8, Eq. 12-14). The three streams (already ReLU'd by
// their conv epilogues) are contiguous: streams [3, D, S].

// pooled [3*D] = mean over S of each (stream, channel) row: the GAP_{T,H,W} of [F_l; F_g; F_a].
extern "C" __global__ void row_mean(const float* x, float* out, long long len) {
    __shared__ float red[33];
    const float* row = x + (long long)blockIdx.x * len;
    float s = 0.0f;
    for (long long j = threadIdx.x; j < len; j += blockDim.x) s += row[j];
    s = block_sum(s, red);
    if (threadIdx.x == 0) out[blockIdx.x] = s / (float)len;
}

// out [D*S] = W0*F_l + W1*F_g + W2*F_a with W = sigmoid(Linear(3D -> 3)(pooled)): every block computes
// the three weights itself (3*3D MACs) so score and fusion are one launch.
extern "C" __global__ void amfb_fuse(const float* streams, const float* pooled, const float* score_w, const float* score_b,
                                     float* out, long long n, int k3d) {
    __shared__ float red[33];
    __shared__ float wts[3];
    for (int o = 0; o < 3; o++) {
        float s = 0.0f;
        for (int j = threadIdx.x; j < k3d; j += blockDim.x) s += score_w[o * k3d + j] * pooled[j];
        s = block_sum(s, red);
        if (threadIdx.x == 0) wts[o] = sigmoidf(s + score_b[o]);
    }
    __syncthreads();
    float w0 = wts[0], w1 = wts[1], w2 = wts[2];
    FOR_EACH(i, n) out[i] = w0 * streams[i] + w1 * streams[n + i] + w2 * streams[2 * n + i];
}
