// MViTv2 pooling attention around the cuBLAS products: decomposed relative positions, the fused
// rel-pos + softmax of each logits row, head merge with residual pooling.

// rel [heads, nq-1, KT+KH+KW]: for spatial query i (token i+1) at (qt, qh, qw) the dot products of its
// unscaled q with R_t[qt, kt], R_h[qh, kh], R_w[qw, kw] (tables gathered on the host: [Q*, K*, d]).
extern "C" __global__ void relpos_dots(const float* q, const float* rt, const float* rh, const float* rw, float* rel,
                                       int heads, int nq, int d, int qt, int qh, int qw, int kt, int kh, int kw) {
    int kk = kt + kh + kw;
    FOR_EACH(i, (long long)heads * (nq - 1) * kk) {
        int j = i % kk;
        long long r = (i / kk) % (nq - 1);
        int hd = (int)(i / ((long long)kk * (nq - 1)));
        int a = r / (qh * qw), b = (r / qw) % qh, c = r % qw;
        const float* tab;
        if (j < kt) tab = rt + ((long long)a * kt + j) * d;
        else if (j < kt + kh) tab = rh + ((long long)b * kh + (j - kt)) * d;
        else tab = rw + ((long long)c * kw + (j - kt - kh)) * d;
        const float* qv = q + ((long long)hd * nq + r + 1) * d;
        float s = 0.0f;
        for (int e = 0; e < d; e++) s += qv[e] * tab[e];
        rel[i] = s;
    }
}

// One block per logits row of s [rows, nk] (rows = heads*nq): adds the decomposed rel-pos terms (when rel
// is given, spatial queries and keys only), then softmax in place; also writes an f16 copy when p16 is
// given (the operand of the fp16 P·V product).
extern "C" __global__ void softmax_relpos(float* s, const float* rel, half_bits* p16, int nq, int nk, int kt, int kh, int kw) {
    __shared__ float red[33];
    long long row = blockIdx.x;
    float* x = s + row * nk;
    int qi = row % nq;
    const float* r = (rel && qi > 0) ? rel + ((row / nq) * (nq - 1) + qi - 1) * (long long)(kt + kh + kw) : 0;
    if (r) {
        for (int j = threadIdx.x; j < nk - 1; j += blockDim.x) {
            int a = j / (kh * kw), b = (j / kw) % kh, c = j % kw;
            x[j + 1] += (r[a] + r[kt + b]) + r[kt + kh + c];
        }
        __syncthreads();
    }
    float m = -3.402823466e38f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) m = fmaxf(m, x[j]);
    m = block_max(m, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float e = expf(x[j] - m);
        x[j] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum, red);
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float v = x[j] * inv;
        x[j] = v;
        if (p16) p16[row * nk + j] = f32_to_f16(v);
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
