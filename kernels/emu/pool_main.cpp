// Driver of the emulated MViT pooling kernels (kernels/tests/emulated.rs). Input: ConvGeom as 16 i32, then
// i32 heads, row_stride, head_stride, has_bias; x f32 [(heads-1)*head_stride + t*h*w*row_stride + d], the
// depthwise kernel f32 [d * kv], bias f32 [heads * d]. Output: y f32 [heads, 1 + np, d] of
// pool_tokens4_smem, then of pool_tokens4_tiled, each launched as kernels/src/ops.rs launches it.
#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN OUT\n", argv[0]); return 2; }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    ConvGeom g;
    int hdr[4];
    if (fread(&g, sizeof(int), 16, in) != 16 || fread(hdr, sizeof(int), 4, in) != 4) return 2;
    const int heads = hdr[0], has_bias = hdr[3];
    const long long rs = hdr[1], hs = hdr[2];
    const int d = g.c, kv = g.kt * g.kh * g.kw, np = g.to * g.ho * g.wo;
    const size_t nx = (size_t)((heads - 1) * hs + (long long)g.t * g.h * g.w * rs + d);
    std::vector<float> x(nx), w((size_t)d * kv), b((size_t)heads * d);
    if (fread(x.data(), 4, nx, in) != nx || fread(w.data(), 4, w.size(), in) != w.size() || fread(b.data(), 4, b.size(), in) != b.size()) return 2;
    fclose(in);
    const float* bp = has_bias ? b.data() : nullptr;
    const size_t out = (size_t)heads * (np + 1) * d;
    std::vector<float> flat(out, std::nanf("")), tiled(out, std::nanf(""));  // NaN: an output the kernel skips shows
    const unsigned blocks = (unsigned)std::min<size_t>((out / 4 + 255) / 256, 1024);
    emu::launch(emu::Dim{blocks, 1, 1}, 256, (size_t)d * kv * 4, [&] { pool_tokens4_smem(x.data(), rs, hs, w.data(), bp, flat.data(), heads, g); });
    emu::launch(emu::Dim{(unsigned)(g.w + 7) / 8, (unsigned)(g.h + 7) / 8, (unsigned)(heads * d / 32)}, 128, (3 * 100 + 27) * 8 * 16,
                [&] { pool_tokens4_tiled(x.data(), rs, hs, w.data(), bp, tiled.data(), heads, g); });
    FILE* o = fopen(argv[2], "wb");
    if (!o || fwrite(flat.data(), 4, out, o) != out || fwrite(tiled.data(), 4, out, o) != out) return 2;
    fclose(o);
    return 0;
}
