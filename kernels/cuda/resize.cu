// Trilinear resampling with align_corners=False and no antialiasing (PyTorch F.interpolate):
// src = max((dst + 0.5) * in/out - 0.5, 0), edge-replicated. Same f32 arithmetic as ops/resize.rs.

__device__ __forceinline__ void axis_tap(int d, int n_in, int n_out, int* i0, int* i1, float* l) {
    float scale = (float)n_in / (float)n_out;
    float src = fmaxf(((float)d + 0.5f) * scale - 0.5f, 0.0f);
    int a = min((int)src, n_in - 1);
    *i0 = a;
    *i1 = a < n_in - 1 ? a + 1 : a;
    *l = src - (float)a;
}

// The value at output (oz, oy, ox) of channel ch of x [C, T, H, W] resampled to [To, Ho, Wo].
__device__ __forceinline__ float trilinear_at(const float* x, int ch, int oz, int oy, int ox, int t, int h, int w, int to, int ho, int wo) {
    int z0, z1, y0, y1, x0, x1;
    float lz, ly, lx;
    axis_tap(oz, t, to, &z0, &z1, &lz);
    axis_tap(oy, h, ho, &y0, &y1, &ly);
    axis_tap(ox, w, wo, &x0, &x1, &lx);
    const float* base = x + (long long)ch * t * h * w;
    const float* p0 = base + (long long)z0 * h * w;
    const float* p1 = base + (long long)z1 * h * w;
    float b0 = (1.0f - ly) * ((1.0f - lx) * p0[y0 * w + x0] + lx * p0[y0 * w + x1]) + ly * ((1.0f - lx) * p0[y1 * w + x0] + lx * p0[y1 * w + x1]);
    float b1 = (1.0f - ly) * ((1.0f - lx) * p1[y0 * w + x0] + lx * p1[y0 * w + x1]) + ly * ((1.0f - lx) * p1[y1 * w + x0] + lx * p1[y1 * w + x1]);
    return (1.0f - lz) * b0 + lz * b1;
}

// x [C, T, H, W] -> y [C, To, Ho, Wo]; accumulate: y += instead of y =.
extern "C" __global__ void trilinear(const float* x, float* y, int c, int t, int h, int w, int to, int ho, int wo, int accumulate) {
    FOR_EACH(i, (long long)c * to * ho * wo) {
        int ox = i % wo, oy = (i / wo) % ho, oz = (i / (wo * ho)) % to;
        int ch = i / (wo * ho * to);
        const float v = trilinear_at(x, ch, oz, oy, ox, t, h, w, to, ho, wo);
        y[i] = accumulate ? y[i] + v : v;
    }
}

// The same on a 3-D grid: x over output columns (blockDim.x threads), y over output rows, z over
// (channel, output frame) pairs, so a thread finds its position without integer division (one set of
// divisions per output made the flat kernel compute-bound at ~8x its memory time on an H100).
extern "C" __global__ void trilinear3d(const float* x, float* y, int c, int t, int h, int w, int to, int ho, int wo, int accumulate) {
    const int ox = blockIdx.x * blockDim.x + threadIdx.x, oy = blockIdx.y, cz = blockIdx.z;
    if (ox >= wo) return;
    const int ch = cz / to, oz = cz - ch * to;
    const float v = trilinear_at(x, ch, oz, oy, ox, t, h, w, to, ho, wo);
    const long long i = ((long long)cz * ho + oy) * wo + ox;
    y[i] = accumulate ? y[i] + v : v;
}
