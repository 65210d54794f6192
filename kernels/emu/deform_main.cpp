// Driver of the emulated deformable im2col (kernels/tests/emulated.rs). Input: 5 i32 (c, t, h, w, split),
// x f32 [c*t*h*w], offsets f32 [18*t*h*w]. Output: col f32 [c*9, t*h*w] with one channel group (the grid
// the kernel had before), then with `split` groups over the grid's y dimension.
int main(int argc, char** argv) {
    FILE* in = emu_input(argc, argv);
    const auto s = emu_read<int>(in, 5);
    const int c = s[0], t = s[1], h = s[2], w = s[3], split = s[4];
    const size_t sp = (size_t)t * h * w;
    const auto x = emu_read<float>(in, c * sp);
    const auto off = emu_read<float>(in, 18 * sp);
    fclose(in);
    const size_t n = (size_t)c * 9 * sp;
    std::vector<float> one(n, std::nanf("")), many(n, std::nanf(""));
    const unsigned blocks = (unsigned)std::max<size_t>((9 * sp + 255) / 256, 1);
    emu::launch(emu::Dim{blocks, 1, 1}, 256, 0, [&] { deform_im2col_f32(x.data(), off.data(), one.data(), c, t, h, w); });
    emu::launch(emu::Dim{blocks, (unsigned)split, 1}, 256, 0, [&] { deform_im2col_f32(x.data(), off.data(), many.data(), c, t, h, w); });
    emu_write(argv[2], {{one.data(), 4 * n}, {many.data(), 4 * n}});
    return 0;
}
