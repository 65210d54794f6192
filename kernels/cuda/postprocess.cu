// The element's post-processing on the GPU: the saliency map upsampled to the frame (bilinear,
// align_corners=False), normalised by its maximum and quantised to 0-255 (render.rs `upsample_u8`),
// then a colormap blended into the frame's planes (render.rs `overlay`, alpha in 0..=256).

// One block: out[0] = max(0, max(map)).
extern "C" __global__ void map_max(const float* map, float* out, int n) {
    __shared__ float red[33];
    float m = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, map[i]);
    m = block_max(m, red);
    if (threadIdx.x == 0) out[0] = m;
}

// values [height, width] u8 from map [map_h, map_w], max from map_max.
extern "C" __global__ void map_to_u8(const float* map, const float* max, unsigned char* values, int map_w, int map_h, int width, int height) {
    float mx = max[0];
    float scale = mx > 1e-6f ? 255.0f / mx : 0.0f;
    FOR_EACH(i, (long long)width * height) {
        int x = i % width, y = i / width;
        int c0, c1, r0, r1;
        float wx, wy;
        axis_plan(x, map_w, width, &c0, &c1, &wx);
        axis_plan(y, map_h, height, &r0, &r1, &wy);
        float a0 = map[r0 * map_w + c0], b0 = map[r1 * map_w + c0];
        float a1 = map[r0 * map_w + c1], b1 = map[r1 * map_w + c1];
        float row0 = a0 + (b0 - a0) * wy, row1 = a1 + (b1 - a1) * wy;
        float v = row0 + (row1 - row0) * wx;
        values[i] = (unsigned char)fminf(fmaxf(rintf(v * scale), 0.0f), 255.0f);
    }
}

__device__ __forceinline__ unsigned char blend_u8(unsigned char dst, unsigned char src, unsigned int a) {
    return (unsigned char)((dst * (256u - a) + src * a + 128u) >> 8);
}

// Blends lut[values] (lut [256, 3]) into one plane of the frame: plane sample (cx, cy) sits at
// data[cy*stride + cx*step + offset], covers frame pixel (sub*cx, sub*cy) (clamped), and takes component k.
// Packed RGB frames: one call per colour component (step = bytes per pixel); YUV: luma (sub 1) and
// chroma (sub 2; NV12 interleaved with step 2) with a lut already in YUV.
extern "C" __global__ void overlay_plane(unsigned char* data, int stride, int step, int offset, int sub, int plane_w, int plane_h,
                                         const unsigned char* values, int width, int height, const unsigned char* lut, int k, unsigned int a) {
    FOR_EACH(i, (long long)plane_w * plane_h) {
        int cx = i % plane_w, cy = i / plane_w;
        int x = min(sub * cx, width - 1), y = min(sub * cy, height - 1);
        unsigned char* p = data + (long long)cy * stride + (long long)cx * step + offset;
        *p = blend_u8(*p, lut[values[y * width + x] * 3 + k], a);
    }
}
