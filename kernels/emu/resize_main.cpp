// Driver of the emulated trilinear kernels (kernels/tests/emulated.rs). Input: 7 i32 (c, t, h, w, to, ho,
// wo), x f32 [c*t*h*w]. Output: y f32 [c*to*ho*wo] of trilinear (flat), then of trilinear3d, each launched as
// kernels/src/ops.rs launches it (accumulate off).
#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN OUT\n", argv[0]); return 2; }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    int s[7];
    if (fread(s, 4, 7, in) != 7) return 2;
    const int c = s[0], t = s[1], h = s[2], w = s[3], to = s[4], ho = s[5], wo = s[6];
    std::vector<float> x((size_t)c * t * h * w);
    if (fread(x.data(), 4, x.size(), in) != x.size()) return 2;
    fclose(in);
    const size_t n = (size_t)c * to * ho * wo;
    std::vector<float> flat(n, std::nanf("")), grid3(n, std::nanf(""));
    emu::launch(emu::Dim{(unsigned)std::max<size_t>((n + 255) / 256, 1), 1, 1}, 256, 0, [&] { trilinear(x.data(), flat.data(), c, t, h, w, to, ho, wo, 0); });
    unsigned tx = 32;
    while (tx < (unsigned)wo && tx < 256) tx *= 2;
    emu::launch(emu::Dim{((unsigned)wo + tx - 1) / tx, (unsigned)ho, (unsigned)(c * to)}, tx, 0, [&] { trilinear3d(x.data(), grid3.data(), c, t, h, w, to, ho, wo, 0); });
    FILE* o = fopen(argv[2], "wb");
    if (!o || fwrite(flat.data(), 4, n, o) != n || fwrite(grid3.data(), 4, n, o) != n) return 2;
    fclose(o);
    return 0;
}
