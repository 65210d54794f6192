// Driver of the emulated attention_flash_h* kernels (kernels/tests/emulated.rs). Input: 12 i32 (d, heads,
// nq, nk, qt, qh, qw, kt, kh, kw, residual, with_rel), f32 scale, then q f32 [heads*nq*d], k and v f16
// [heads*nk*d], the gathered rel tables f32 [qt*kt*d], [qh*kh*d], [qw*kw*d] and the key table u32 [nk-1].
// Output: merged f16 [nq*heads*d].
int main(int argc, char** argv) {
    FILE* in = emu_input(argc, argv);
    const auto hdr = emu_read<int>(in, 12);
    const int d = hdr[0], heads = hdr[1], nq = hdr[2], nk = hdr[3], qt = hdr[4], qh = hdr[5], qw = hdr[6], kt = hdr[7], kh = hdr[8], kw = hdr[9];
    const int residual = hdr[10], with_rel = hdr[11];
    const float scale = emu_read<float>(in, 1)[0];
    const auto q = emu_read<float>(in, (size_t)heads * nq * d);
    const auto k = emu_read<half_bits>(in, (size_t)heads * nk * d);
    const auto v = emu_read<half_bits>(in, (size_t)heads * nk * d);
    const auto rt = emu_read<float>(in, (size_t)qt * kt * d);
    const auto rh = emu_read<float>(in, (size_t)qh * kh * d);
    const auto rw = emu_read<float>(in, (size_t)qw * kw * d);
    const auto keys = emu_read<unsigned>(in, (size_t)(nk - 1));
    fclose(in);
    if (d != 48 && d != 64 && d != 96) {
        fprintf(stderr, "no kernel for head dim %d\n", d);
        return 2;
    }
    std::vector<half_bits> merged((size_t)nq * heads * d, 0x7e00);  // NaN: a row the kernel skips shows
    // without rel-pos the kernel gets no tables and an empty key grid (as kernels/src/ops.rs would)
    const float* prt = with_rel ? rt.data() : nullptr;
    const int kk = with_rel ? kt + kh + kw : 0;
    auto kernel = [&] {
        auto f = d == 48 ? attention_flash_h48 : d == 64 ? attention_flash_h64 : attention_flash_h96;
        f(q.data(), k.data(), v.data(), prt, rh.data(), rw.data(), keys.data(), merged.data(), heads, nq, nk, qh, qw, with_rel ? kt : 0,
          with_rel ? kh : 0, with_rel ? kw : 0, scale, residual);
    };
    emu::launch(emu::Dim{(unsigned)((nq + FA_ROWS - 1) / FA_ROWS), (unsigned)heads, 1}, 32 * FA_WARPS, (size_t)FA_WARPS * (16 * (kk + 2) + d) * 4, kernel);
    emu_write(argv[2], {{merged.data(), 2 * merged.size()}});
    return 0;
}
