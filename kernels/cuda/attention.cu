// MViTv2 pooling attention around the cuBLAS products: the decomposed relative positions fused into the
// softmax of each logits row, head merge with residual pooling.

// One block per logits row of s [rows, ld] (rows = heads*nq; the first nk columns of a row are its logits,
// ld >= nk pads rows so the f16 GEMM operands stay 16-byte aligned). With q given, a spatial query i
// (token i+1, at (a, b, c) of the query grid) first gets the decomposed rel-pos terms
//   q_i·R_t[a, kt] + q_i·R_h[b, kh] + q_i·R_w[c, kw]  for key (kt, kh, kw),
// its unscaled q [heads, nq, d] dotted here with the gathered tables R [Q*, K*, d] (the kk = KT+KH+KW
// dots per row once, in shared memory: no [heads, nq, kk] tensor); keys[j] packs spatial key j's grid
// position as kt | kh << 10 | kw << 20 (a table read instead of three integer divisions per logit,
// which made this kernel compute-bound). Then softmax. The probabilities go
// back into s, or, when p16 is given, only into p16 [rows, ld] as f16 (the operand of the P·V product),
// its padding columns zero.
// Dynamic shared memory: kk + d floats, plus nk floats when cache_row (the row is then read from global
// memory once).
extern "C" __global__ void softmax_relpos(float* s, int ld, const float* q, const float* rt, const float* rh, const float* rw,
                                          const unsigned* keys, half_bits* p16, int nq, int nk, int d, int qh, int qw, int kt, int kh, int kw, int cache_row) {
    extern __shared__ float smem[];
    __shared__ float red[33];
    const long long row = blockIdx.x;
    float* g = s + row * ld;
    const int qi = (int)(row % nq);
    const int kk = kt + kh + kw;
    float* rel = smem;             // [kk]
    float* qv = smem + kk;         // [d]
    float* x = cache_row ? smem + kk + d : g;
    const bool with_rel = q && qi > 0;
    if (with_rel) {
        const float* src = q + row * d;  // row = hd*nq + qi, and q is [heads, nq, d]
        for (int e = threadIdx.x; e < d; e += blockDim.x) qv[e] = src[e];
        __syncthreads();
        const int r = qi - 1, a = r / (qh * qw), b = (r / qw) % qh, c = r % qw;
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
        for (int j = warp; j < kk; j += warps) {
            const float* tab = j < kt ? rt + ((long long)a * kt + j) * d
                             : j < kt + kh ? rh + ((long long)b * kh + (j - kt)) * d
                             : rw + ((long long)c * kw + (j - kt - kh)) * d;
            float acc = 0.0f;
            for (int e = lane; e < d; e += 32) acc += qv[e] * tab[e];
            acc = warp_sum(acc);
            if (lane == 0) rel[j] = acc;
        }
        __syncthreads();
    }
    // logits (+ rel-pos on spatial keys), their max
    float m = -3.402823466e38f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float v = g[j];
        if (with_rel && j > 0) {
            const unsigned k = keys[j - 1];
            v += (rel[k & 1023u] + rel[kt + ((k >> 10) & 1023u)]) + rel[kt + kh + (k >> 20)];
        }
        x[j] = v;
        m = fmaxf(m, v);
    }
    m = block_max(m, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float e = expf(x[j] - m);
        x[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_sum(sum, red);
    if (p16) {
        half_bits* out = p16 + row * ld;
        for (int j = threadIdx.x; j < nk; j += blockDim.x) out[j] = f32_to_f16(x[j] * inv);
        for (int j = nk + threadIdx.x; j < ld; j += blockDim.x) out[j] = 0;  // padding keys: probability 0
    } else {
        for (int j = threadIdx.x; j < nk; j += blockDim.x) g[j] = x[j] * inv;
    }
}

// merged [nq, heads*d] = o [heads, nq, d] (+ q for spatial tokens when residual: MViT residual pooling).
extern "C" __global__ void attn_merge(const float* o, const float* q, float* merged, int heads, int nq, int d, int residual) {
    FOR_EACH(i, (long long)heads * nq * d) {
        int c = i % d;
        long long tok = (i / d) % nq;
        int hd = (int)(i / ((long long)d * nq));
        float v = o[i];
        if (residual && tok > 0) v += q[i];
        merged[tok * heads * d + hd * d + c] = v;
    }
}
