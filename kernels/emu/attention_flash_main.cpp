// Driver of the emulated attention_flash_h* kernels (kernels/tests/emulated.rs writes the input file,
// reads the output file). Input: 12 i32 (d, heads, nq, nk, qt, qh, qw, kt, kh, kw, residual, with_rel),
// f32 scale, then q f32 [heads*nq*d], k and v f16 [heads*nk*d], the gathered rel tables f32 [qt*kt*d],
// [qh*kh*d], [qw*kw*d] and the key table u32 [nk-1]. Output: merged f16 [nq*heads*d].
#include <cstdio>

template <class T>
static std::vector<T> read_vec(FILE* f, size_t n) {
    std::vector<T> v(n);
    if (n && fread(v.data(), sizeof(T), n, f) != n) { fprintf(stderr, "short input\n"); std::exit(2); }
    return v;
}

int main(int argc, char** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN OUT\n", argv[0]); return 2; }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    auto hdr = read_vec<int>(in, 12);
    const int d = hdr[0], heads = hdr[1], nq = hdr[2], nk = hdr[3], qt = hdr[4], qh = hdr[5], qw = hdr[6], kt = hdr[7], kh = hdr[8], kw = hdr[9];
    const int residual = hdr[10], with_rel = hdr[11];
    const float scale = read_vec<float>(in, 1)[0];
    auto q = read_vec<float>(in, (size_t)heads * nq * d);
    auto k = read_vec<half_bits>(in, (size_t)heads * nk * d);
    auto v = read_vec<half_bits>(in, (size_t)heads * nk * d);
    auto rt = read_vec<float>(in, (size_t)qt * kt * d);
    auto rh = read_vec<float>(in, (size_t)qh * kh * d);
    auto rw = read_vec<float>(in, (size_t)qw * kw * d);
    auto keys = read_vec<unsigned>(in, (size_t)(nk - 1));
    fclose(in);
    std::vector<half_bits> merged((size_t)nq * heads * d, 0x7e00);  // NaN: a row the kernel skips shows
    const float* prt = with_rel ? rt.data() : nullptr;
    const int kk = with_rel ? kt + kh + kw : 0;
    auto kernel = [&] {
        auto f = d == 48 ? attention_flash_h48 : d == 64 ? attention_flash_h64 : attention_flash_h96;
        f(q.data(), k.data(), v.data(), prt, rh.data(), rw.data(), keys.data(), merged.data(), heads, nq, nk, qh, qw, with_rel ? kt : 0, with_rel ? kh : 0, with_rel ? kw : 0, scale, residual);
    };
    if (d != 48 && d != 64 && d != 96) { fprintf(stderr, "no kernel for head dim %d\n", d); return 2; }
    emu::launch(emu::Dim{(unsigned)((nq + FA_ROWS - 1) / FA_ROWS), (unsigned)heads, 1}, 32 * FA_WARPS, (size_t)FA_WARPS * (16 * (kk + 2) + d) * 4, kernel);
    FILE* out = fopen(argv[2], "wb");
    if (!out || fwrite(merged.data(), 2, merged.size(), out) != merged.size()) return 2;
    fclose(out);
    return 0;
}
