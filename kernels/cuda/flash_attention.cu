// MViTv2 pooling attention in one kernel for fp16 mode (FlashAttention-2 style): per block 64 queries of
// one head, key tiles of 64 streamed through shared memory, q·kᵀ and P·v on the tensor cores
// (mma.sync m16n8k16, f16 operands, f32 accumulators), the decomposed rel-pos terms and an online softmax
// in registers, residual pooling and the head merge in the epilogue. The logits matrix of the three-pass
// path (cuBLAS q·kᵀ, softmax_relpos_h, cuBLAS P·v, attn_merge_h) never reaches memory: at the paper size it
// is 58-460 MB per block, read and written four times.
//
// Register fragments follow the PTX ISA layouts of mma.m16n8k16 (.row.col, f16 -> f32); lane = 4 * g + t:
//   A 16x16: a[0] = (row g, cols 2t, 2t+1), a[1] = (row g+8, same cols), a[2] = (row g, cols 2t+8, 2t+9),
//            a[3] = (row g+8, cols 2t+8, 2t+9); each register two f16, the lower column in the low half.
//   B 16x8:  b[0] = (rows 2t, 2t+1, col g), b[1] = (rows 2t+8, 2t+9, col g).
//   C 16x8:  c[0], c[1] = (row g, cols 2t, 2t+1), c[2], c[3] = (row g+8, cols 2t, 2t+1).
// The C fragments of two adjacent key n-tiles are exactly the A fragment of P for those 16 keys, so the
// probabilities go from the softmax to the second product without leaving registers.

#define FA_WARPS 4
#define FA_ROWS (16 * FA_WARPS)  // queries per block
#define FA_KEYS 64               // keys per tile

// d += a · b for one m16n8k16 tile (c accumulates in place).
__device__ __forceinline__ void mma_16816(float* c, const unsigned* a, const unsigned* b) {
#ifdef DTFSAL_EMULATE
    emu_mma_16816(c, a, b);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Four 8x8 f16 matrices from shared memory (ldmatrix .x4): lane 8m + r gives the address of row r of matrix m
// (16 bytes, 16-byte aligned); r[m] gets the lane's pair of matrix m in the mma fragment layout (row g,
// cols 2t, 2t+1), or with TRANS the transpose's (rows 2t, 2t+1, col g).
template <bool TRANS>
__device__ __forceinline__ void ldsm_x4(unsigned* r, const half_bits* row) {
#ifdef DTFSAL_EMULATE
    emu_ldmatrix_x4(r, row, TRANS);
#else
    const unsigned a = (unsigned)__cvta_generic_to_shared(row);
    if constexpr (TRANS) {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    } else {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    }
#endif
}

// 2^x on the special-function unit (ex2.approx: 2 ulp; -inf gives 0), one instruction where exp2f adds
// range handling the softmax does not need.
__device__ __forceinline__ float fast_exp2(float x) {
#ifdef DTFSAL_EMULATE
    return exp2f(x);
#else
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#endif
}

__device__ __forceinline__ unsigned pack_f16x2(float lo, float hi) {
    return (unsigned)f32_to_f16(lo) | ((unsigned)f32_to_f16(hi) << 16);
}

// q [heads, nq, D] f32 (pooled, normed, unscaled); k, v f16 with head h's nk keys at rows h*nk.. (row
// stride D; rows past the last head's nk are never read); rel-pos as softmax_relpos_h (rt null: none);
// merged [nq, heads*D] f16 = softmax(scale q·kᵀ + rel) v (+ q on spatial queries when residual).
// Grid (ceil(nq / 64), heads), 128 threads; dynamic shared memory FA_WARPS * (16 * (kk + 2) + D) floats.
//
// Per logit the softmax does no comparison: each query's rel-pos row (in the log2 domain) ends with two
// sentinels, 0 at kk and -inf at kk + 1, and a key's packed indices point the class key at the zeros and
// the padding keys past nk at the -inf (so masking is the same three shared-memory reads as rel-pos).
template <int D>
__device__ void attention_flash_impl(const float* q, const half_bits* k, const half_bits* v, const float* rt, const float* rh,
                                     const float* rw, const unsigned* keys, half_bits* merged, int heads, int nq, int nk, int qh,
                                     int qw, int kt, int kh, int kw, float scale, int residual) {
    static_assert(D % 16 == 0, "head dim: a multiple of 16");
    constexpr int KC = D / 16;          // 16-wide chunks of the head dim (q·kᵀ reduction steps)
    constexpr int NT = D / 8;           // 8-wide n-tiles of the output
    constexpr int KS = D + 8;           // row stride (halves) of the K and V tiles: conflict-free ldmatrix rows
    __shared__ __align__(16) half_bits ks[FA_KEYS * KS];  // [key][dim]
    __shared__ __align__(16) half_bits vs[FA_KEYS * KS];  // [key][dim]
    __shared__ unsigned kpos[FA_KEYS];                    // a key's three rel indices, 10 bits each
    extern __shared__ float fa_smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int hd = blockIdx.y, row0 = blockIdx.x * FA_ROWS + warp * 16;
    const int kk = kt + kh + kw, rs = kk + 2;  // rel-pos row: kk dots, then the 0 and -inf sentinels
    const float L2E = 1.4426950408889634f;
    float* rel = fa_smem + warp * (16 * rs + D);  // [16][rs]: the warp's rows' rel-pos terms, log2 domain
    float* qv = rel + 16 * rs;                    // [D]: one q row, staged for the dots
    const float* qhead = q + (long long)hd * nq * D;

    // 1. the rel-pos dots of the warp's 16 queries (zero for the class query and rows past nq)
    for (int r = 0; r < 16; r++) {
        const int qi = row0 + r;  // warp-uniform
        float* rr = rel + r * rs;
        if (rt && qi > 0 && qi < nq) {
            for (int e = lane; e < D; e += 32) qv[e] = qhead[(long long)qi * D + e];
            __syncwarp();
            const int p = qi - 1, a = p / (qh * qw), b = (p / qw) % qh, c = p % qw;
            if (D % 32 == 0) relpos_dots_warp8(qv, rt, rh, rw, rr, D, a, b, c, kt, kh, kw);
            else relpos_dots_warp(qv, rt, rh, rw, rr, 0, 1, D, a, b, c, kt, kh, kw);
            __syncwarp();
            for (int j = lane; j < kk; j += 32) rr[j] *= L2E;
        } else {
            for (int j = lane; j < kk; j += 32) rr[j] = 0.0f;
        }
        if (lane == 0) rr[kk] = 0.0f, rr[kk + 1] = -INFINITY;
    }
    __syncwarp();

    // 2. the warp's q rows as A fragments (rows past nq read the last row; never stored)
    unsigned qa[KC][4];
    {
        const float* q0 = qhead + (long long)min(row0 + g, nq - 1) * D;
        const float* q1 = qhead + (long long)min(row0 + g + 8, nq - 1) * D;
#pragma unroll
        for (int kc = 0; kc < KC; kc++) {
            const int c = kc * 16 + 2 * t;
            qa[kc][0] = pack_f16x2(q0[c], q0[c + 1]);
            qa[kc][1] = pack_f16x2(q1[c], q1[c + 1]);
            qa[kc][2] = pack_f16x2(q0[c + 8], q0[c + 9]);
            qa[kc][3] = pack_f16x2(q1[c + 8], q1[c + 9]);
        }
    }

    float o[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // rows g and g+8: running max (log2), this lane's sum
    const half_bits* khead = k + (long long)hd * nk * D;
    const half_bits* vhead = v + (long long)hd * nk * D;
    const float* rel0 = rel + g * rs;
    const float* rel1 = rel + (g + 8) * rs;
    const float sl2e = scale * L2E;
    // ldmatrix row addresses of this lane: matrix m = lane / 8, row lane % 8
    const int lm = lane >> 3, lr = lane & 7;

    for (int j0 = 0; j0 < nk; j0 += FA_KEYS) {
        // 3. the tile (keys past nk are zero: their probabilities are, but 0 * garbage could be NaN)
        __syncthreads();  // every warp is done with the previous tile
        constexpr int VEC = D / 8;  // 16-byte vectors per row
        for (int idx = threadIdx.x; idx < FA_KEYS * VEC; idx += blockDim.x) {
            const int key = idx / VEC, c8 = (idx - key * VEC) * 8, j = j0 + key;
            uint4 kv = make_uint4(0u, 0u, 0u, 0u), vv = make_uint4(0u, 0u, 0u, 0u);
            if (j < nk) {
                kv = *(const uint4*)(khead + (long long)j * D + c8);
                vv = *(const uint4*)(vhead + (long long)j * D + c8);
            }
            *(uint4*)(ks + key * KS + c8) = kv;
            *(uint4*)(vs + key * KS + c8) = vv;
        }
        if (threadIdx.x < FA_KEYS) {
            const int j = j0 + threadIdx.x;
            const unsigned zero = (unsigned)kk, ninf = (unsigned)kk + 1u;
            unsigned pk = j < nk ? zero | zero << 10 | zero << 20 : ninf | zero << 10 | zero << 20;
            if (rt && j > 0 && j < nk) {
                const unsigned kq = keys[j - 1];
                pk = (kq & 1023u) | ((unsigned)kt + ((kq >> 10) & 1023u)) << 10 | ((unsigned)(kt + kh) + (kq >> 20)) << 20;
            }
            kpos[threadIdx.x] = pk;
        }
        __syncthreads();

        // 4. s = q·kᵀ: 8 n-tiles of 8 keys; B fragments by ldmatrix, two 16-wide chunks of the head dim a load
        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            const half_bits* krow = ks + (nt * 8 + lr) * KS + lm * 8;  // matrix m: dims 8m..8m+7 of the chunk pair
#pragma unroll
            for (int kc = 0; kc + 1 < KC; kc += 2) {
                unsigned b[4];
                ldsm_x4<false>(b, krow + kc * 16);
                mma_16816(s[nt], qa[kc], b);
                mma_16816(s[nt], qa[kc + 1], b + 2);
            }
            if (KC % 2) {  // the last chunk alone (head dim 48): B read pairwise
                const half_bits* kr = ks + (nt * 8 + g) * KS + (KC - 1) * 16 + 2 * t;
                const unsigned b[2] = {*(const unsigned*)kr, *(const unsigned*)(kr + 8)};
                mma_16816(s[nt], qa[KC - 1], b);
            }
        }

        // 5. logits in the log2 domain + rel-pos (padding keys: -inf), the rows' new maxima over the quad
        float mx0 = m0, mx1 = m1;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const unsigned pk = kpos[nt * 8 + 2 * t + e];
                const unsigned it = pk & 1023u, ih = (pk >> 10) & 1023u, iw = pk >> 20;
                s[nt][e] = fmaf(s[nt][e], sl2e, (rel0[it] + rel0[ih]) + rel0[iw]);
                s[nt][e + 2] = fmaf(s[nt][e + 2], sl2e, (rel1[it] + rel1[ih]) + rel1[iw]);
                mx0 = fmaxf(mx0, s[nt][e]);
                mx1 = fmaxf(mx1, s[nt][e + 2]);
            }
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        // every tile holds key j0 < nk, so the maxima are finite from the first tile on (2^-inf = 0)
        const float a0 = fast_exp2(m0 - mx0), a1 = fast_exp2(m1 - mx1);
        m0 = mx0;
        m1 = mx1;

        // 6. P = 2^(x - max), straight into A fragments (n-tiles 2c, 2c+1 = keys 16c..16c+15)
        unsigned pa[4][4];
        float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            const float p0 = fast_exp2(s[nt][0] - m0), p1 = fast_exp2(s[nt][1] - m0), p2 = fast_exp2(s[nt][2] - m1), p3 = fast_exp2(s[nt][3] - m1);
            ps0 += p0 + p1;
            ps1 += p2 + p3;
            pa[nt >> 1][(nt & 1) * 2] = pack_f16x2(p0, p1);
            pa[nt >> 1][(nt & 1) * 2 + 1] = pack_f16x2(p2, p3);
        }
        l0 = l0 * a0 + ps0;
        l1 = l1 * a1 + ps1;

        // 7. o = o * rescale + P·v; B fragments by transposing ldmatrix, two n-tiles a load
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            o[nt][0] *= a0;
            o[nt][1] *= a0;
            o[nt][2] *= a1;
            o[nt][3] *= a1;
        }
#pragma unroll
        for (int kc = 0; kc < 4; kc++) {
            // matrix m: keys 16kc + 8(m&1).., dims of n-tile nt + (m>>1)
            const half_bits* vrow = vs + (kc * 16 + (lm & 1) * 8 + lr) * KS + (lm >> 1) * 8;
#pragma unroll
            for (int nt = 0; nt < NT; nt += 2) {
                unsigned b[4];
                ldsm_x4<true>(b, vrow + nt * 8);
                mma_16816(o[nt], pa[kc], b);
                mma_16816(o[nt + 1], pa[kc], b + 2);
            }
        }
    }

    // 8. normalise, residual pooling, merged heads (f16 pairs)
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv[2] = {1.0f / l0, 1.0f / l1};
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int r = row0 + g + 8 * half;
        if (r >= nq) continue;
        const float* qr = qhead + (long long)r * D;
        half_bits* out = merged + ((long long)r * heads + hd) * D;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            const int c = nt * 8 + 2 * t;
            float x0 = o[nt][2 * half] * inv[half], x1 = o[nt][2 * half + 1] * inv[half];
            if (residual && r > 0) {
                x0 += qr[c];
                x1 += qr[c + 1];
            }
            *(unsigned*)(out + c) = pack_f16x2(x0, x1);
        }
    }
}

extern "C" __global__ void attention_flash_h48(const float* q, const half_bits* k, const half_bits* v, const float* rt, const float* rh, const float* rw,
                                               const unsigned* keys, half_bits* merged, int heads, int nq, int nk, int qh, int qw, int kt, int kh, int kw,
                                               float scale, int residual) {
    attention_flash_impl<48>(q, k, v, rt, rh, rw, keys, merged, heads, nq, nk, qh, qw, kt, kh, kw, scale, residual);
}

extern "C" __global__ void attention_flash_h64(const float* q, const half_bits* k, const half_bits* v, const float* rt, const float* rh, const float* rw,
                                               const unsigned* keys, half_bits* merged, int heads, int nq, int nk, int qh, int qw, int kt, int kh, int kw,
                                               float scale, int residual) {
    attention_flash_impl<64>(q, k, v, rt, rh, rw, keys, merged, heads, nq, nk, qh, qw, kt, kh, kw, scale, residual);
}

extern "C" __global__ void attention_flash_h96(const float* q, const half_bits* k, const half_bits* v, const float* rt, const float* rh, const float* rw,
                                               const unsigned* keys, half_bits* merged, int heads, int nq, int nk, int qh, int qw, int kt, int kh, int kw,
                                               float scale, int residual) {
    attention_flash_impl<96>(q, k, v, rt, rh, rw, keys, merged, heads, nq, nk, qh, qw, kt, kh, kw, scale, residual);
}
