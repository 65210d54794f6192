// Driver of the emulated MViT pooling kernels (kernels/tests/emulated.rs). Input: ConvGeom as 16 i32, then
// i32 heads, row_stride, head_stride, has_bias; x f32 [(heads-1)*head_stride + t*h*w*row_stride + d], the
// depthwise kernel f32 [d * kv], bias f32 [heads * d]. Output: y f32 [heads, 1 + np, d] of
// pool_tokens4_smem, then of pool_tokens4_tiled, each launched as kernels/src/ops.rs launches it.
int main(int argc, char** argv) {
    FILE* in = emu_input(argc, argv);
    ConvGeom g;
    const auto gi = emu_read<int>(in, 16);
    std::memcpy(&g, gi.data(), sizeof(g));
    const auto hdr = emu_read<int>(in, 4);
    const int heads = hdr[0], has_bias = hdr[3];
    const long long rs = hdr[1], hs = hdr[2];
    const int d = g.c, kv = g.kt * g.kh * g.kw, np = g.to * g.ho * g.wo;
    const auto x = emu_read<float>(in, (size_t)((heads - 1) * hs + (long long)g.t * g.h * g.w * rs + d));
    const auto w = emu_read<float>(in, (size_t)d * kv);
    const auto b = emu_read<float>(in, (size_t)heads * d);
    fclose(in);
    const float* bp = has_bias ? b.data() : nullptr;
    const size_t out = (size_t)heads * (np + 1) * d;
    std::vector<float> flat(out, std::nanf("")), tiled(out, std::nanf(""));  // NaN: an output the kernel skips shows
    const unsigned blocks = (unsigned)std::min<size_t>((out / 4 + 255) / 256, 1024);
    emu::launch(emu::Dim{blocks, 1, 1}, 256, (size_t)d * kv * 4, [&] { pool_tokens4_smem(x.data(), rs, hs, w.data(), bp, flat.data(), heads, g); });
    emu::launch(emu::Dim{(unsigned)(g.w + 7) / 8, (unsigned)(g.h + 7) / 8, (unsigned)(heads * d / 32)}, 128, (3 * 100 + 27) * 8 * 16,
                [&] { pool_tokens4_tiled(x.data(), rs, hs, w.data(), bp, tiled.data(), heads, g); });
    emu_write(argv[2], {{flat.data(), 4 * out}, {tiled.data(), 4 * out}});
    return 0;
}
