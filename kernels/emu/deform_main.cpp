// Driver of the emulated deformable im2col (kernels/tests/emulated.rs). Input: 5 i32 (c, t, h, w, split),
// x f32 [c*t*h*w], offsets f32 [18*t*h*w]. Output: col f32 [c*9, t*h*w] with one channel group (the grid
// the kernel had before), then with `split` groups over the grid's y dimension.
#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN OUT\n", argv[0]); return 2; }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    int s[5];
    if (fread(s, 4, 5, in) != 5) return 2;
    const int c = s[0], t = s[1], h = s[2], w = s[3], split = s[4];
    const size_t sp = (size_t)t * h * w;
    std::vector<float> x(c * sp), off(18 * sp);
    if (fread(x.data(), 4, x.size(), in) != x.size() || fread(off.data(), 4, off.size(), in) != off.size()) return 2;
    fclose(in);
    const size_t n = (size_t)c * 9 * sp;
    std::vector<float> one(n, std::nanf("")), many(n, std::nanf(""));
    const unsigned blocks = (unsigned)std::max<size_t>((9 * sp + 255) / 256, 1);
    emu::launch(emu::Dim{blocks, 1, 1}, 256, 0, [&] { deform_im2col_f32(x.data(), off.data(), one.data(), c, t, h, w); });
    emu::launch(emu::Dim{blocks, (unsigned)split, 1}, 256, 0, [&] { deform_im2col_f32(x.data(), off.data(), many.data(), c, t, h, w); });
    FILE* o = fopen(argv[2], "wb");
    if (!o || fwrite(one.data(), 4, n, o) != n || fwrite(many.data(), 4, n, o) != n) return 2;
    fclose(o);
    return 0;
}
