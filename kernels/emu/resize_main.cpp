// Driver of the emulated trilinear kernels (kernels/tests/emulated.rs). Input: 7 i32 (c, t, h, w, to, ho,
// wo), x f32 [c*t*h*w]. Output: y f32 [c*to*ho*wo] of trilinear (flat), then of trilinear3d, each launched as
// kernels/src/ops.rs launches it (accumulate off).
int main(int argc, char** argv) {
    FILE* in = emu_input(argc, argv);
    const auto s = emu_read<int>(in, 7);
    const int c = s[0], t = s[1], h = s[2], w = s[3], to = s[4], ho = s[5], wo = s[6];
    const auto x = emu_read<float>(in, (size_t)c * t * h * w);
    fclose(in);
    const size_t n = (size_t)c * to * ho * wo;
    std::vector<float> flat(n, std::nanf("")), grid3(n, std::nanf(""));
    emu::launch(emu::Dim{(unsigned)std::max<size_t>((n + 255) / 256, 1), 1, 1}, 256, 0, [&] { trilinear(x.data(), flat.data(), c, t, h, w, to, ho, wo, 0); });
    unsigned tx = 32;
    while (tx < (unsigned)wo && tx < 256) tx *= 2;
    emu::launch(emu::Dim{((unsigned)wo + tx - 1) / tx, (unsigned)ho, (unsigned)(c * to)}, tx, 0, [&] { trilinear3d(x.data(), grid3.data(), c, t, h, w, to, ho, wo, 0); });
    emu_write(argv[2], {{flat.data(), 4 * n}, {grid3.data(), 4 * n}});
    return 0;
}
