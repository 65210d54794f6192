// MViTv2 pooling attention around the cuBLAS products: the decomposed relative positions fused into the
// softmax of each logits row, head merge with residual pooling.

// rel[j] for j = first, first + step, ... < kt + kh + kw: the dot product of a query's unscaled q (qv, in
// shared memory) with its rows of the gathered tables R_t [Q*, K*, d] (at its t = a), R_h (b), R_w (c).
// One warp; lane 0 writes.
__device__ void relpos_dots_warp(const float* qv, const float* rt, const float* rh, const float* rw, float* rel, int first, int step,
                                 int d, int a, int b, int c, int kt, int kh, int kw) {
    const int lane = threadIdx.x & 31, kk = kt + kh + kw;
    for (int j = first; j < kk; j += step) {
        const float* tab = j < kt ? rt + ((long long)a * kt + j) * d
                         : j < kt + kh ? rh + ((long long)b * kh + (j - kt)) * d
                         : rw + ((long long)c * kw + (j - kt - kh)) * d;
        float acc = 0.0f;
        for (int e = lane; e < d; e += 32) acc += qv[e] * tab[e];
        acc = warp_sum(acc);
        if (lane == 0) rel[j] = acc;
    }
}

// The same for one warp when d is a multiple of 32: eight lanes per dot product, four dot products per
// step, each lane over d/8 contiguous elements (16-byte loads, a group's row read coalesced), reduced
// over its eight lanes with three shuffles: a quarter of the chained steps of relpos_dots_warp.
__device__ void relpos_dots_warp8(const float* qv, const float* rt, const float* rh, const float* rw, float* rel, int d, int a, int b,
                                  int c, int kt, int kh, int kw) {
    const int lane = threadIdx.x & 31, group = lane >> 3, sub = lane & 7, kk = kt + kh + kw, per = d >> 3;
    const float* qs = qv + sub * per;
    for (int j0 = 0; j0 < kk; j0 += 4) {
        const int j = j0 + group;
        float acc = 0.0f;
        if (j < kk) {
            const float* tab = j < kt ? rt + ((long long)a * kt + j) * d
                             : j < kt + kh ? rh + ((long long)b * kh + (j - kt)) * d
                             : rw + ((long long)c * kw + (j - kt - kh)) * d;
            const float4* t4 = (const float4*)(tab + sub * per);
            for (int e = 0; e < (per >> 2); e++) {
                const float4 v = __ldg(t4 + e);
                acc += qs[4 * e] * v.x + qs[4 * e + 1] * v.y + qs[4 * e + 2] * v.z + qs[4 * e + 3] * v.w;
            }
        }
        acc += __shfl_xor_sync(0xffffffffu, acc, 4);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        if (sub == 0 && j < kk) rel[j] = acc;
    }
}

// One block per logits row of s [rows, ld] (rows = heads*nq; the first nk columns of a row are its logits,
// ld >= nk pads rows so the f16 GEMM operands stay 16-byte aligned). With q given, a spatial query i
// (token i+1, at (a, b, c) of the query grid) first gets the decomposed rel-pos terms
//   q_i·R_t[a, kt] + q_i·R_h[b, kh] + q_i·R_w[c, kw]  for key (kt, kh, kw),
// its unscaled q [heads, nq, d] dotted here with the gathered tables R [Q*, K*, d] (the kk = KT+KH+KW
// dots per row once, in shared memory: no [heads, nq, kk] tensor); keys[j] packs spatial key j's grid
// position as kt | kh << 10 | kw << 20 (a table read instead of three integer divisions per logit,
// which made this kernel compute-bound). Then softmax, in place (padding columns untouched).
// Dynamic shared memory: kk + d floats, plus nk floats when cache_row (the row is then read from global
// memory once).
extern "C" __global__ void softmax_relpos(float* s, int ld, const float* q, const float* rt, const float* rh, const float* rw,
                                          const unsigned* keys, int nq, int nk, int d, int qh, int qw, int kt, int kh, int kw, int cache_row) {
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
        const int r = qi - 1;
        relpos_dots_warp(qv, rt, rh, rw, rel, threadIdx.x >> 5, blockDim.x >> 5, d, r / (qh * qw), (r / qw) % qh, r % qw, kt, kh, kw);
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
    for (int j = threadIdx.x; j < nk; j += blockDim.x) g[j] = x[j] * inv;
}

// The same on f16 logits s [rows, ld] (fp16 autocast's q·kᵀ), the f16 probabilities written over them,
// padding columns zeroed; ld a multiple of 8. One warp per row and no block-wide barriers: a lane reads 8
// logits at a time (16 bytes), the max and the sum come from one online pass (the running sum rescaled
// when the max grows), a second pass writes. 4 warps (rows) a block; shared memory: 4 x (kk + d) floats.
#define SMH_WARPS 4
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
extern "C" __global__ void softmax_relpos_h(half_bits* s, int ld, const float* q, const float* rt, const float* rh, const float* rw,
                                            const unsigned* keys, int rows, int nq, int nk, int d, int qh, int qw, int kt, int kh, int kw) {
    extern __shared__ float smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long row = (long long)blockIdx.x * SMH_WARPS + warp;
    if (row >= rows) return;
    const int kk = kt + kh + kw;
    float* rel = smem + warp * (kk + d);  // [kk]
    float* qv = rel + kk;                 // [d]
    half_bits* g = s + row * ld;
    const int qi = (int)(row % nq);
    const bool with_rel = q && qi > 0;
    if (with_rel) {
        const float* src = q + row * d;
        for (int e = lane; e < d; e += 32) qv[e] = src[e];
        __syncwarp();
        const int r = qi - 1;
        if (d % 32 == 0) relpos_dots_warp8(qv, rt, rh, rw, rel, d, r / (qh * qw), (r / qw) % qh, r % qw, kt, kh, kw);
        else relpos_dots_warp(qv, rt, rh, rw, rel, 0, 1, d, r / (qh * qw), (r / qw) % qh, r % qw, kt, kh, kw);
        __syncwarp();
    }
    const float L2E = 1.4426950408889634f;
    // The 8 logits j0..j0+7 (+ rel-pos), in the log2 domain, -inf past nk. Keys run in raster order (kw
    // fastest), so the chunk's first key position comes from the table and the next ones by counting: per
    // logit one shared-memory read (the w term) instead of a table read and three.
    auto chunk = [&](int j0, uint4 pk, float* v) {
        const unsigned hb[4] = {pk.x, pk.y, pk.z, pk.w};
        int a = 0, b = 0, c = -1;  // position of spatial key j0 - 1 (c = -1: before the first one)
        if (j0 > 0 && j0 < nk) {  // (a padding chunk's positions are never used)
            const unsigned k = keys[j0 - 1];
            a = k & 1023u, b = (k >> 10) & 1023u, c = k >> 20;
        }
        float th = with_rel ? rel[a] + rel[kt + b] : 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const int j = j0 + e;
            float x = f16_to_f32((half_bits)(e & 1 ? hb[e >> 1] >> 16 : hb[e >> 1] & 0xffffu));
            if (with_rel) {
                if (e > 0) {  // step to spatial key j - 1
                    if (++c == kw) {
                        c = 0;
                        if (++b == kh) b = 0, ++a;
                        th = rel[a] + rel[kt + b];
                    }
                }
                if (j > 0) x += th + rel[kt + kh + c];
            }
            v[e] = j < nk ? x * L2E : -INFINITY;
        }
    };
    // pass 1: running max and sum, a chunk max at a time
    float m = -INFINITY, sum = 0.0f;
    for (int j0 = lane * 8; j0 < nk; j0 += 256) {
        float v[8];
        chunk(j0, *(const uint4*)(g + j0), v);
        float cm = v[0];
#pragma unroll
        for (int e = 1; e < 8; e++) cm = fmaxf(cm, v[e]);
        if (cm > m) {
            sum *= exp2f(m - cm);
            m = cm;
        }
#pragma unroll
        for (int e = 0; e < 8; e++) sum += exp2f(v[e] - m);
    }
    // combine the lanes' (max, sum); a lane that saw no logit has m = -inf, sum = 0
    for (int o = 16; o > 0; o >>= 1) {
        const float mo = __shfl_xor_sync(0xffffffffu, m, o), so = __shfl_xor_sync(0xffffffffu, sum, o);
        const float mm = fmaxf(m, mo);
        sum = (m == mm ? sum : sum * exp2f(m - mm)) + (mo == mm ? so : so * exp2f(mo - mm));
        m = mm;
    }
    const float inv = 1.0f / sum;
    // pass 2: the probabilities over the logits (padding columns: 0)
    for (int j0 = lane * 8; j0 < ld; j0 += 256) {
        float v[8];
        chunk(j0, *(const uint4*)(g + j0), v);
        unsigned out[4];
#pragma unroll
        for (int e = 0; e < 8; e += 2) out[e / 2] = (unsigned)f32_to_f16(exp2f(v[e] - m) * inv) | ((unsigned)f32_to_f16(exp2f(v[e + 1] - m) * inv) << 16);
        *(uint4*)(g + j0) = make_uint4(out[0], out[1], out[2], out[3]);
    }
}

// merged [nq, heads*d] = o [heads, nq, d] (+ q for spatial tokens when residual: MViT residual pooling);
// attn_merge_h writes f16 (the operand of the fp16 output projection).
template <typename Out>
__device__ void attn_merge_impl(const float* o, const float* q, Out* merged, int heads, int nq, int d, int residual) {
    FOR_EACH(i, heads * nq * d) {
        int c = i % d;
        int tok = (i / d) % nq;
        int hd = i / (d * nq);
        float v = o[i];
        if (residual && tok > 0) v += q[i];
        if constexpr (sizeof(Out) == 2) merged[tok * heads * d + hd * d + c] = f32_to_f16(v); else merged[tok * heads * d + hd * d + c] = v;
    }
}

extern "C" __global__ void attn_merge(const float* o, const float* q, float* merged, int heads, int nq, int d, int residual) {
    attn_merge_impl<float>(o, q, merged, heads, nq, d, residual);
}

extern "C" __global__ void attn_merge_h(const float* o, const float* q, half_bits* merged, int heads, int nq, int d, int residual) {
    attn_merge_impl<half_bits>(o, q, merged, heads, nq, d, residual);
}
