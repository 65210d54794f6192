// Driver of the emulated im2col kernels (kernels/tests/emulated.rs). Input: ConvGeom as 16 i32 (c, t, h, w,
// kt, kh, kw, st, sh, sw, pt, ph, pw, to, ho, wo), then x f32 [c*t*h*w]. Output: the f16 columns of
// im2col3d_f16, then those of im2col3d_f16x8 (when the output positions are a multiple of 8), each
// [c*kt*kh*kw, to*ho*wo], launched as kernels/src/ops.rs launches them.
int main(int argc, char** argv) {
    FILE* in = emu_input(argc, argv);
    ConvGeom g;
    const auto gi = emu_read<int>(in, 16);
    std::memcpy(&g, gi.data(), sizeof(g));
    const size_t n = (size_t)g.c * g.t * g.h * g.w, np = (size_t)g.to * g.ho * g.wo, m = (size_t)g.c * g.kt * g.kh * g.kw * np;
    const auto x = emu_read<float>(in, n);
    fclose(in);
    const unsigned cy = (unsigned)std::min(g.c, 65535);
    std::vector<half_bits> flat(m, 0x7e00), vec8(m, 0x7e00);  // NaN: an element the kernel skips shows
    emu::launch(emu::Dim{(unsigned)std::max<size_t>((np + 255) / 256, 1), cy, 1}, 256, 0, [&] { im2col3d_f16(x.data(), flat.data(), g); });
    if (np % 8 == 0) {
        emu::launch(emu::Dim{(unsigned)std::max<size_t>((np / 8 + 127) / 128, 1), cy, 1}, 128, 0, [&] { im2col3d_f16x8(x.data(), vec8.data(), g); });
        emu_write(argv[2], {{flat.data(), 2 * m}, {vec8.data(), 2 * m}});
    } else {
        emu_write(argv[2], {{flat.data(), 2 * m}});
    }
    return 0;
}
