// The element's pre-processing on the GPU: a raw frame (RGB/RGBA/BGRx/BGRA packed, I420, NV12) ->
// bilinear resize (align_corners=False, source clamped at 0; axes in f64 as gst-plugin's preprocess.rs)
// of the 0-255 RGB values -> (v - mean) / std, planar [3, H, W] f32 or f16.

#define FMT_PACKED 0
#define FMT_I420 1
#define FMT_NV12 2

struct FrameDesc {
    int format;          // FMT_*
    int bpp;             // packed: bytes per pixel
    int r, g, b;         // packed: byte offsets of R, G, B in a pixel
    int width, height;
    int s0, s1, s2;      // plane strides
};

struct YuvCoeffs {       // as gst-plugin's YuvToRgb
    float y_off, y_scale, c_scale, rv, gu, gv, bu;
};

struct Normalise {
    float mean[3];
    float inv_std[3];
};

__device__ __forceinline__ void axis_plan(int o, int n_in, int n_out, int* i0, int* i1, float* w) {
    double scale = (double)n_in / (double)max(n_out, 1);
    double src = fmax(((double)o + 0.5) * scale - 0.5, 0.0);
    int last = n_in - 1;
    int a = min((int)floor(src), last);
    *i0 = a;
    *i1 = min(a + 1, last);
    *w = (float)(src - (double)a);
}

__device__ __forceinline__ void fetch_rgb(const unsigned char* p0, const unsigned char* p1, const unsigned char* p2, FrameDesc f,
                                          YuvCoeffs k, int x, int y, float* rgb) {
    if (f.format == FMT_PACKED) {
        const unsigned char* px = p0 + (long long)y * f.s0 + (long long)x * f.bpp;
        rgb[0] = px[f.r]; rgb[1] = px[f.g]; rgb[2] = px[f.b];
        return;
    }
    float yv = p0[(long long)y * f.s0 + x], u, v;
    if (f.format == FMT_I420) {
        u = p1[(long long)(y / 2) * f.s1 + x / 2];
        v = p2[(long long)(y / 2) * f.s2 + x / 2];
    } else {
        long long o = (long long)(y / 2) * f.s1 + (x / 2) * 2;
        u = p1[o];
        v = p1[o + 1];
    }
    float yy = (yv - k.y_off) * k.y_scale, uu = (u - 128.0f) * k.c_scale, vv = (v - 128.0f) * k.c_scale;
    rgb[0] = fminf(fmaxf(yy + k.rv * vv, 0.0f), 255.0f);
    rgb[1] = fminf(fmaxf(yy + k.gu * uu + k.gv * vv, 0.0f), 255.0f);
    rgb[2] = fminf(fmaxf(yy + k.bu * uu, 0.0f), 255.0f);
}

template <typename T>
__device__ void preprocess_impl(const unsigned char* p0, const unsigned char* p1, const unsigned char* p2, FrameDesc f, YuvCoeffs k,
                                Normalise nrm, T* out, int out_w, int out_h) {
    long long plane = (long long)out_w * out_h;
    FOR_EACH(i, plane) {
        int ox = i % out_w, oy = i / out_w;
        int x0, x1, y0, y1;
        float wx, wy;
        axis_plan(ox, f.width, out_w, &x0, &x1, &wx);
        axis_plan(oy, f.height, out_h, &y0, &y1, &wy);
        float a[3], b[3], c[3], d[3];
        fetch_rgb(p0, p1, p2, f, k, x0, y0, a);
        fetch_rgb(p0, p1, p2, f, k, x1, y0, b);
        fetch_rgb(p0, p1, p2, f, k, x0, y1, c);
        fetch_rgb(p0, p1, p2, f, k, x1, y1, d);
        for (int ch = 0; ch < 3; ch++) {
            float top = a[ch] + (b[ch] - a[ch]) * wx;
            float bot = c[ch] + (d[ch] - c[ch]) * wx;
            float v = (top + (bot - top) * wy - nrm.mean[ch]) * nrm.inv_std[ch];
            if constexpr (sizeof(T) == 2) out[ch * plane + i] = f32_to_f16(v); else out[ch * plane + i] = v;
        }
    }
}

extern "C" __global__ void preprocess_f32(const unsigned char* p0, const unsigned char* p1, const unsigned char* p2, FrameDesc f,
                                          YuvCoeffs k, Normalise nrm, float* out, int out_w, int out_h) {
    preprocess_impl<float>(p0, p1, p2, f, k, nrm, out, out_w, out_h);
}
extern "C" __global__ void preprocess_f16(const unsigned char* p0, const unsigned char* p1, const unsigned char* p2, FrameDesc f,
                                          YuvCoeffs k, Normalise nrm, half_bits* out, int out_w, int out_h) {
    preprocess_impl<half_bits>(p0, p1, p2, f, k, nrm, out, out_w, out_h);
}
