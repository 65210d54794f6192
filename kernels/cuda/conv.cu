// Convolution helpers: im2col for dense Conv3d (GEMM by cuBLAS), direct depthwise Conv3d on volumes and
// on MViT token layouts (the q/k/v pooling), max pooling.

struct ConvGeom {
    int c, t, h, w;        // input [C, T, H, W]
    int kt, kh, kw;
    int st, sh, sw;
    int pt, ph, pw;
    int to, ho, wo;        // output grid
};

// col [C*kt*kh*kw, To*Ho*Wo] (row = ((ci*kt + dz)*kh + dy)*kw + dx), zero padding. Grid: x over output
// positions, y over input channels; a thread decomposes its position once and writes all kt*kh*kw rows of
// its channel (coalesced across the warp). Integer division is a long instruction sequence on the GPU:
// one set per element made this kernel compute-bound at a tenth of the memory bandwidth.
template <typename T>
__device__ void im2col3d_impl(const float* x, T* col, ConvGeom g) {
    const int hw = g.ho * g.wo, np = g.to * hw, kv = g.kt * g.kh * g.kw;
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < np; p += gridDim.x * blockDim.x) {
        const int oz = p / hw, r = p - oz * hw, oy = r / g.wo, ox = r - oy * g.wo;
        const int z0 = oz * g.st - g.pt, y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        for (int ci = blockIdx.y; ci < g.c; ci += gridDim.y) {
            const float* src = x + (long long)ci * g.t * g.h * g.w;
            T* dst = col + (long long)ci * kv * np + p;
            for (int dz = 0; dz < g.kt; dz++) {
                const int iz = z0 + dz;
                const bool zin = iz >= 0 && iz < g.t;
                for (int dy = 0; dy < g.kh; dy++) {
                    const int iy = y0 + dy;
                    const bool yin = zin && iy >= 0 && iy < g.h;
                    const float* line = src + (iz * g.h + iy) * g.w;
                    for (int dx = 0; dx < g.kw; dx++) {
                        const int ix = x0 + dx;
                        const float v = (yin && ix >= 0 && ix < g.w) ? line[ix] : 0.0f;
                        if constexpr (sizeof(T) == 2) *dst = f32_to_f16(v); else *dst = v;
                        dst += np;
                    }
                }
            }
        }
    }
}

extern "C" __global__ void im2col3d_f32(const float* x, float* col, ConvGeom g) { im2col3d_impl<float>(x, col, g); }
extern "C" __global__ void im2col3d_f16(const float* x, half_bits* col, ConvGeom g) { im2col3d_impl<half_bits>(x, col, g); }

// im2col3d_f16 with eight consecutive output positions a thread (np a multiple of 8, so every row of col
// is 16-byte aligned): one 16-byte store per row instead of eight 2-byte ones (a warp writes 512
// contiguous bytes), and the eight positions decoded once, by counting along the row from the first.
extern "C" __global__ void im2col3d_f16x8(const float* x, half_bits* col, ConvGeom g) {
    const int hw = g.ho * g.wo, np = g.to * hw, kv = g.kt * g.kh * g.kw, n8 = np >> 3;
    for (int p8 = blockIdx.x * blockDim.x + threadIdx.x; p8 < n8; p8 += gridDim.x * blockDim.x) {
        const int p = p8 << 3;
        int z0[8], y0[8], x0[8];  // the outputs' window corners in the input
        {
            int oz = p / hw, r = p - oz * hw, oy = r / g.wo, ox = r - oy * g.wo;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                z0[e] = oz * g.st - g.pt, y0[e] = oy * g.sh - g.ph, x0[e] = ox * g.sw - g.pw;
                if (++ox == g.wo) {
                    ox = 0;
                    if (++oy == g.ho) oy = 0, ++oz;
                }
            }
        }
        for (int ci = blockIdx.y; ci < g.c; ci += gridDim.y) {
            const float* src = x + (long long)ci * g.t * g.h * g.w;
            half_bits* dst = col + (long long)ci * kv * np + p;
            for (int dz = 0; dz < g.kt; dz++) {
                for (int dy = 0; dy < g.kh; dy++) {
                    for (int dx = 0; dx < g.kw; dx++) {
                        unsigned packed[4];
#pragma unroll
                        for (int e = 0; e < 8; e += 2) {
                            float v[2];
#pragma unroll
                            for (int u = 0; u < 2; u++) {
                                const int iz = z0[e + u] + dz, iy = y0[e + u] + dy, ix = x0[e + u] + dx;
                                const bool in = (unsigned)iz < (unsigned)g.t && (unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w;
                                v[u] = in ? src[(iz * g.h + iy) * g.w + ix] : 0.0f;
                            }
                            packed[e / 2] = (unsigned)f32_to_f16(v[0]) | (unsigned)f32_to_f16(v[1]) << 16;
                        }
                        *(uint4*)dst = make_uint4(packed[0], packed[1], packed[2], packed[3]);
                        dst += np;
                    }
                }
            }
        }
    }
}

// Depthwise Conv3d on a volume: x [C, T, H, W], w [C, kt, kh, kw], bias [C] or null -> y [C, To, Ho, Wo].
extern "C" __global__ void dwconv3d(const float* x, const float* wt, const float* bias, float* y, ConvGeom g) {
    int np = g.to * g.ho * g.wo;
    FOR_EACH(i, g.c * np) {
        int p = i % np;
        int ch = i / np;
        int ox = p % g.wo, oy = (p / g.wo) % g.ho, oz = p / (g.wo * g.ho);
        const float* src = x + (long long)ch * g.t * g.h * g.w;
        const float* k = wt + (long long)ch * g.kt * g.kh * g.kw;
        float acc = 0.0f;
        for (int dz = 0; dz < g.kt; dz++) {
            int iz = oz * g.st + dz - g.pt;
            if (iz < 0 || iz >= g.t) continue;
            for (int dy = 0; dy < g.kh; dy++) {
                int iy = oy * g.sh + dy - g.ph;
                if (iy < 0 || iy >= g.h) continue;
                for (int dx = 0; dx < g.kw; dx++) {
                    int ix = ox * g.sw + dx - g.pw;
                    if (ix < 0 || ix >= g.w) continue;
                    acc += k[(dz * g.kh + dy) * g.kw + dx] * src[((long long)iz * g.h + iy) * g.w + ix];
                }
            }
        }
        y[i] = acc + (bias ? bias[ch] : 0.0f);
    }
}

// MViT q/k/v pooling straight from the token layout: input token j (0 = class) of head hd, channel c at
// x[hd*head_stride + j*row_stride + c]; depthwise kernel w [d, kt, kh, kw] shared by the heads (g.c = d).
// y [heads, 1 + To*Ho*Wo, d]; the class token is copied through.
// bias (null, or [heads * d] at head stride d): added to every input token first (the qkv projection's
// bias, so its GEMM needs no epilogue pass). V channels a thread (1, or 4 with 16-byte loads when d, the
// strides and x are multiples of 4 floats: a quarter of the load instructions, which bound this kernel).
// TAP_MAJOR: wt is [kv, d] (the shared-memory copy of pool_tokens4_smem), read 16 bytes a tap.
template <int V, bool TAP_MAJOR = false>
__device__ void pool_tokens_impl(const float* x, long long row_stride, long long head_stride, const float* wt, const float* bias, float* y, int heads, ConvGeom g) {
    // 32-bit index math (the wrapper checks heads * (1 + np) * d fits)
    const int d = g.c, dv = d / V, hw = g.ho * g.wo, np = g.to * hw, kv = g.kt * g.kh * g.kw;
    const int n = heads * (np + 1) * dv;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const int ch = (i % dv) * V, rest = i / dv, tok = rest % (np + 1), hd = rest / (np + 1);
        const float* src = x + hd * head_stride + ch;
        float b[V];
#pragma unroll
        for (int v = 0; v < V; v++) b[v] = bias ? bias[hd * d + ch + v] : 0.0f;
        float acc[V];
        if (tok == 0) {
#pragma unroll
            for (int v = 0; v < V; v++) acc[v] = src[v] + b[v];
        } else {
#pragma unroll
            for (int v = 0; v < V; v++) acc[v] = 0.0f;
            const int p = tok - 1, oz = p / hw, r = p - oz * hw, oy = r / g.wo, ox = r - oy * g.wo;
            const float* k = wt + ch * kv;
            for (int dz = 0; dz < g.kt; dz++) {
                const int iz = oz * g.st + dz - g.pt;
                if (iz < 0 || iz >= g.t) continue;
                for (int dy = 0; dy < g.kh; dy++) {
                    const int iy = oy * g.sh + dy - g.ph;
                    if (iy < 0 || iy >= g.h) continue;
                    for (int dx = 0; dx < g.kw; dx++) {
                        const int ix = ox * g.sw + dx - g.pw;
                        if (ix < 0 || ix >= g.w) continue;
                        const long long j = 1 + (iz * g.h + iy) * g.w + ix;
                        const int tap = (dz * g.kh + dy) * g.kw + dx;
                        if constexpr (TAP_MAJOR) {
                            const float4 xv = *(const float4*)(src + j * row_stride);
                            const float4 kv4 = *(const float4*)(wt + tap * d + ch);
                            acc[0] += kv4.x * (xv.x + b[0]);
                            acc[1] += kv4.y * (xv.y + b[1]);
                            acc[2] += kv4.z * (xv.z + b[2]);
                            acc[3] += kv4.w * (xv.w + b[3]);
                        } else if constexpr (V == 4) {
                            const float4 xv = *(const float4*)(src + j * row_stride);
                            acc[0] += k[tap] * (xv.x + b[0]);
                            acc[1] += k[kv + tap] * (xv.y + b[1]);
                            acc[2] += k[2 * kv + tap] * (xv.z + b[2]);
                            acc[3] += k[3 * kv + tap] * (xv.w + b[3]);
                        } else {
                            acc[0] += k[tap] * (src[j * row_stride] + b[0]);
                        }
                    }
                }
            }
        }
        float* out = y + (long long)rest * d + ch;
        if constexpr (V == 4) *(float4*)out = make_float4(acc[0], acc[1], acc[2], acc[3]); else out[0] = acc[0];
    }
}

extern "C" __global__ void pool_tokens(const float* x, long long row_stride, long long head_stride, const float* wt,
                                       const float* bias, float* y, int heads, ConvGeom g) {
    pool_tokens_impl<1>(x, row_stride, head_stride, wt, bias, y, heads, g);
}

extern "C" __global__ void pool_tokens4(const float* x, long long row_stride, long long head_stride, const float* wt,
                                        const float* bias, float* y, int heads, ConvGeom g) {
    pool_tokens_impl<4>(x, row_stride, head_stride, wt, bias, y, heads, g);
}

// pool_tokens4 with the kernel w staged in shared memory tap-major, [kv, d]: a warp's weight reads of one
// tap are 16 contiguous bytes a thread (from the global [d, kv] layout each thread's four weight loads hit
// four sectors: ncu counted 71 % of this kernel's sectors as excess). Dynamic shared memory: d * kv floats.
extern "C" __global__ void pool_tokens4_smem(const float* x, long long row_stride, long long head_stride, const float* wt,
                                             const float* bias, float* y, int heads, ConvGeom g) {
    extern __shared__ float4 ws4[];
    float* ws = (float*)ws4;
    const int d = g.c, kv = g.kt * g.kh * g.kw;
    for (int i = threadIdx.x; i < d * kv; i += blockDim.x) {
        const int c = i / kv, tap = i - c * kv;
        ws[tap * d + c] = wt[i];
    }
    __syncthreads();
    pool_tokens_impl<4, true>(x, row_stride, head_stride, ws, bias, y, heads, g);
}

// pool_tokens4_smem for the MViT pools that keep the grid (kernel 3x3x3, stride 1, padding 1): the input
// staged in shared memory. A block owns an 8x8 tile of output positions and 32 channels of one head and
// slides along time, holding three input frames of its tile (10x10 tokens, the bias added, 0 outside) in
// a ring: each input token is read from global memory once per block instead of once per tap (the flat
// kernel reads 27 times the input through L2). A thread computes four horizontally adjacent outputs from
// six input columns per row of taps. 128 threads: lane = threadIdx.x & 7 (four channels), quad =
// threadIdx.x >> 3 (tile row quad / 2, columns 4 * (quad & 1)..+3). Grid (ceil(w / 8), ceil(h / 8),
// heads * d / 32); dynamic shared memory (3 * 100 + 27) * 8 float4.
#define PT_TILE 8
#define PT_IN (PT_TILE + 2)
extern "C" __global__ void pool_tokens4_tiled(const float* x, long long row_stride, long long head_stride, const float* wt,
                                              const float* bias, float* y, int heads, ConvGeom g) {
    extern __shared__ float4 pt_smem[];
    const int d = g.c, chunks = d / 32, np = g.t * g.h * g.w;
    const int hd = blockIdx.z / chunks, c0 = (blockIdx.z - hd * chunks) * 32;
    const int lane = threadIdx.x & 7, quad = threadIdx.x >> 3, qy = quad >> 1, qx = (quad & 1) * 4;
    const int oy0 = blockIdx.y * PT_TILE, ox0 = blockIdx.x * PT_TILE;
    constexpr int SLOT = PT_IN * PT_IN * 8;  // float4s of one frame slot [10 * 10 tokens][8 lanes]
    float4* ring = pt_smem;                  // [3][SLOT]
    float4* ws = pt_smem + 3 * SLOT;         // [27 taps][8 lanes]
    const float* xh = x + hd * head_stride + c0;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4 b4 = bias ? *(const float4*)(bias + hd * d + c0 + lane * 4) : zero;
    for (int i = threadIdx.x; i < 27 * 32; i += blockDim.x) {
        const int tap = i >> 5, c = i & 31;
        ((float*)ws)[tap * 32 + c] = wt[(c0 + c) * 27 + tap];
    }
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x < 8) {  // the class token, copied (+ bias)
        const float4 v = *(const float4*)(xh + lane * 4);
        *(float4*)(y + (long long)hd * (np + 1) * d + c0 + lane * 4) = make_float4(v.x + b4.x, v.y + b4.y, v.z + b4.z, v.w + b4.w);
    }
    // input frame iz into its ring slot: tile rows oy0-1.., columns ox0-1.., (x + bias) or 0 outside
    auto load = [&](int iz) {
        float4* s = ring + (iz % 3) * SLOT;
        for (int i = threadIdx.x; i < SLOT; i += blockDim.x) {  // i & 7 == lane: blockDim is a multiple of 8
            const int tok = i >> 3, ty = tok / PT_IN, tx = tok - ty * PT_IN, iy = oy0 - 1 + ty, ix = ox0 - 1 + tx;
            float4 v = zero;
            if ((unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w) {
                const float4 u = *(const float4*)(xh + (1 + ((long long)iz * g.h + iy) * g.w + ix) * row_stride + lane * 4);
                v = make_float4(u.x + b4.x, u.y + b4.y, u.z + b4.z, u.w + b4.w);
            }
            s[i] = v;
        }
    };
    load(0);
    if (g.t > 1) load(1);
    const int oy = oy0 + qy;
    for (int oz = 0; oz < g.t; oz++) {
        __syncthreads();  // frames oz-1..oz+1 loaded
        float4 acc[4] = {zero, zero, zero, zero};
        for (int dz = 0; dz < 3; dz++) {
            const int iz = oz - 1 + dz;
            if (iz < 0 || iz >= g.t) continue;
            const float4* s = ring + (iz % 3) * SLOT;
            for (int dy = 0; dy < 3; dy++) {
                float4 v[6];
#pragma unroll
                for (int k = 0; k < 6; k++) v[k] = s[((qy + dy) * PT_IN + qx + k) * 8 + lane];
#pragma unroll
                for (int dx = 0; dx < 3; dx++) {
                    const float4 w4 = ws[((dz * 3 + dy) * 3 + dx) * 8 + lane];
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        acc[e].x += w4.x * v[e + dx].x;
                        acc[e].y += w4.y * v[e + dx].y;
                        acc[e].z += w4.z * v[e + dx].z;
                        acc[e].w += w4.w * v[e + dx].w;
                    }
                }
            }
        }
        if (oy < g.h) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int ox = ox0 + qx + e;
                if (ox < g.w) *(float4*)(y + ((long long)hd * (np + 1) + 1 + ((long long)oz * g.h + oy) * g.w + ox) * d + c0 + lane * 4) = acc[e];
            }
        }
        __syncthreads();  // every thread is done with frame oz-1 before frame oz+2 takes its slot
        if (oz + 2 < g.t) load(oz + 2);
    }
}

// Max pooling of a volume x [C, T, H, W] -> y [C, To, Ho, Wo] (padding never wins).
extern "C" __global__ void maxpool3d(const float* x, float* y, ConvGeom g) {
    int np = g.to * g.ho * g.wo;
    FOR_EACH(i, g.c * np) {
        int p = i % np;
        int ch = i / np;
        int ox = p % g.wo, oy = (p / g.wo) % g.ho, oz = p / (g.wo * g.ho);
        const float* src = x + (long long)ch * g.t * g.h * g.w;
        float m = -3.402823466e38f;
        for (int dz = 0; dz < g.kt; dz++) {
            int iz = oz * g.st + dz - g.pt;
            if (iz < 0 || iz >= g.t) continue;
            for (int dy = 0; dy < g.kh; dy++) {
                int iy = oy * g.sh + dy - g.ph;
                if (iy < 0 || iy >= g.h) continue;
                for (int dx = 0; dx < g.kw; dx++) {
                    int ix = ox * g.sw + dx - g.pw;
                    if (ix >= 0 && ix < g.w) m = fmaxf(m, src[((long long)iz * g.h + iy) * g.w + ix]);
                }
            }
        }
        y[i] = m;
    }
}

// Max pooling on tokens: x [1 + T*H*W, C] -> y [1 + To*Ho*Wo, C], the class token copied (MViT skip path),
// + bias [C] when given (the attention projection's, which then accumulates into y).
extern "C" __global__ void maxpool_tokens(const float* x, const float* bias, float* y, ConvGeom g) {
    int c = g.c;
    int np = g.to * g.ho * g.wo;
    FOR_EACH(i, (np + 1) * c) {
        int ch = i % c;
        int tok = i / c;
        const float b = bias ? bias[ch] : 0.0f;
        if (tok == 0) { y[i] = x[ch] + b; continue; }
        int p = tok - 1;
        int ox = p % g.wo, oy = (p / g.wo) % g.ho, oz = p / (g.wo * g.ho);
        float m = -3.402823466e38f;
        for (int dz = 0; dz < g.kt; dz++) {
            int iz = oz * g.st + dz - g.pt;
            if (iz < 0 || iz >= g.t) continue;
            for (int dy = 0; dy < g.kh; dy++) {
                int iy = oy * g.sh + dy - g.ph;
                if (iy < 0 || iy >= g.h) continue;
                for (int dx = 0; dx < g.kw; dx++) {
                    int ix = ox * g.sw + dx - g.pw;
                    if (ix >= 0 && ix < g.w) m = fmaxf(m, x[(1 + ((long long)iz * g.h + iy) * g.w + ix) * c + ch]);
                }
            }
        }
        y[i] = m + b;
    }
}
