// Deformable conv v1 im2col (3x3, stride 1, pad 1, one offset group; torchvision semantics) over every
// slice of x [C, T, H, W] with offsets [18, T, H, W] ((ky, kx) major, then (dy, dx)):
// col [C*9, T*H*W], row ci*9 + k. One thread per (tap k, slice, position): the bilinear corners are
// computed once and reused for the input channels blockIdx.y, blockIdx.y + gridDim.y, ... (a grid with
// gridDim.y > 1 splits the channels where the positions alone leave the GPU mostly idle).
template <typename T>
__device__ void deform_im2col_impl(const float* x, const float* off, T* col, int c, int t, int h, int w) {
    int hw = h * w, n = t * hw;
    FOR_EACH(i, 9 * n) {
        int k = i / n;
        int sp = i % n;
        int s = sp / hw;
        int p = sp % hw;
        int oy = p / w, ox = p % w;
        float y = oy - 1 + k / 3 + off[((long long)(2 * k) * t + s) * hw + p];
        float xx = ox - 1 + k % 3 + off[((long long)(2 * k + 1) * t + s) * hw + p];
        int idx[4] = {0, 0, 0, 0};
        float wt[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (!(y <= -1.0f || y >= (float)h || xx <= -1.0f || xx >= (float)w)) {
            float y0f = floorf(y), x0f = floorf(xx);
            float ly = y - y0f, lx = xx - x0f, hy = 1.0f - ly, hx = 1.0f - lx;
            int y0 = (int)y0f, x0 = (int)x0f;
            int cy[4] = {y0, y0, y0 + 1, y0 + 1}, cx[4] = {x0, x0 + 1, x0, x0 + 1};
            float cw[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
            for (int j = 0; j < 4; j++)
                if (cy[j] >= 0 && cx[j] >= 0 && cy[j] < h && cx[j] < w) { idx[j] = cy[j] * w + cx[j]; wt[j] = cw[j]; }
        }
        for (int ci = blockIdx.y; ci < c; ci += gridDim.y) {
            const float* img = x + ((long long)ci * t + s) * hw;
            float v = wt[0] * img[idx[0]] + wt[1] * img[idx[1]] + wt[2] * img[idx[2]] + wt[3] * img[idx[3]];
            long long o = (long long)(ci * 9 + k) * n + sp;
            if constexpr (sizeof(T) == 2) col[o] = f32_to_f16(v); else col[o] = v;
        }
    }
}

extern "C" __global__ void deform_im2col_f32(const float* x, const float* off, float* col, int c, int t, int h, int w) {
    deform_im2col_impl<float>(x, off, col, c, t, h, w);
}
extern "C" __global__ void deform_im2col_f16(const float* x, const float* off, half_bits* col, int c, int t, int h, int w) {
    deform_im2col_impl<half_bits>(x, off, col, c, t, h, w);
}
