// CPU emulation of the CUDA C subset the DTFSal kernels use, for kernel tests on machines without a GPU
// (kernels/tests/emulated.rs). A launch runs the grid's blocks one after another and each block's
// threads as OS threads: __syncthreads and __syncwarp are barriers, warp shuffles and mma.sync go
// through a per-warp exchange area, so a kernel's indexing, its fragment layouts, its masking and its
// synchronisation run as written. Static __shared__ arrays become statics (one block at a time), dynamic
// shared memory is one buffer filled with NaN before each block (a read before a write shows).
// It says nothing about speed, and not every race shows: a test here complements the GPU run of
// scripts/gpu-check, it does not replace it.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <memory>
#include <thread>
#include <vector>

#define DTFSAL_EMULATE 1
#define __device__
#define __global__
#define __host__
#define __forceinline__ inline
#define __restrict__
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static

struct uint4 { unsigned x, y, z, w; };
struct float4 { float x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
template <class T> inline T __ldg(const T* p) { return *p; }

typedef unsigned short half_bits;
inline half_bits f32_to_f16(float f) { _Float16 h = (_Float16)f; half_bits b; std::memcpy(&b, &h, 2); return b; }
inline float f16_to_f32(half_bits b) { _Float16 h; std::memcpy(&h, &b, 2); return (float)h; }

namespace emu {
struct Dim { unsigned x = 1, y = 1, z = 1; };

struct Warp {
    std::barrier<> bar{32};
    unsigned slot[32];
    unsigned a[32][4], b[32][2];
    const half_bits* rows[32];
};

struct Block {
    std::barrier<> bar;
    std::vector<std::unique_ptr<Warp>> warps;
    explicit Block(int threads) : bar(threads) {
        for (int w = 0; w < threads / 32; w++) warps.push_back(std::make_unique<Warp>());
    }
};

inline thread_local Dim tid, bid;
inline thread_local Block* block = nullptr;
inline Dim bdim, gdim;
inline std::vector<float> dynamic_smem;

inline Warp& warp() { return *block->warps[tid.x >> 5]; }

// Runs kernel() for every thread of a 1-D block over a 3-D grid; dyn_bytes of dynamic shared memory.
template <class F>
void launch(Dim grid, unsigned threads, size_t dyn_bytes, F kernel) {
    if (threads % 32 != 0) std::abort();
    gdim = grid;
    bdim = Dim{threads, 1, 1};
    for (unsigned bz = 0; bz < grid.z; bz++) {
    for (unsigned by = 0; by < grid.y; by++) {
        for (unsigned bx = 0; bx < grid.x; bx++) {
            dynamic_smem.assign(dyn_bytes / 4 + 4, std::nanf(""));
            Block blk((int)threads);
            std::vector<std::thread> pool;
            for (unsigned i = 0; i < threads; i++) {
                pool.emplace_back([&, i] {
                    tid = Dim{i, 0, 0};
                    bid = Dim{bx, by, bz};
                    block = &blk;
                    kernel();
                    // an exited thread no longer holds up barriers (as on the GPU)
                    blk.bar.arrive_and_drop();
                    warp().bar.arrive_and_drop();
                });
            }
            for (auto& t : pool) t.join();
        }
    }
    }
}
}  // namespace emu

#define threadIdx emu::tid
#define blockIdx emu::bid
#define blockDim emu::bdim
#define gridDim emu::gdim

inline void __syncthreads() { emu::block->bar.arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warp().bar.arrive_and_wait(); }

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int o) {
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    auto& w = emu::warp();
    const int lane = emu::tid.x & 31;
    std::memcpy(&w.slot[lane], &v, 4);
    w.bar.arrive_and_wait();
    T r;
    std::memcpy(&r, &w.slot[lane ^ o], 4);
    w.bar.arrive_and_wait();
    return r;
}

// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 with the PTX ISA fragment layouts (see
// flash_attention.cu): each lane publishes its fragments, then computes its own four outputs.
inline void emu_mma_16816(float* c, const unsigned* a, const unsigned* b) {
    auto& w = emu::warp();
    const int lane = emu::tid.x & 31;
    for (int i = 0; i < 4; i++) w.a[lane][i] = a[i];
    for (int i = 0; i < 2; i++) w.b[lane][i] = b[i];
    w.bar.arrive_and_wait();
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, t = l & 3;
        const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
        for (int i = 0; i < 4; i++) {
            A[rows[i]][cols[i]] = f16_to_f32((half_bits)(w.a[l][i] & 0xffffu));
            A[rows[i]][cols[i] + 1] = f16_to_f32((half_bits)(w.a[l][i] >> 16));
        }
        for (int i = 0; i < 2; i++) {
            B[2 * t + 8 * i][g] = f16_to_f32((half_bits)(w.b[l][i] & 0xffffu));
            B[2 * t + 8 * i + 1][g] = f16_to_f32((half_bits)(w.b[l][i] >> 16));
        }
    }
    w.bar.arrive_and_wait();
    const int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++) {
        const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
        float acc = c[i];
        for (int kx = 0; kx < 16; kx++) acc += A[row][kx] * B[kx][col];
        c[i] = acc;
    }
}

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lane 8m + i gives the address of row i of matrix m;
// r[m] of lane 4g + t = (M[g][2t], M[g][2t+1]), or with trans (M[2t][g], M[2t+1][g]), the low half first.
inline void emu_ldmatrix_x4(unsigned* r, const half_bits* row, bool trans) {
    if (reinterpret_cast<uintptr_t>(row) % 16 != 0) std::abort();  // the instruction needs 16-byte rows
    auto& w = emu::warp();
    const int lane = emu::tid.x & 31, g = lane >> 2, t = lane & 3;
    w.rows[lane] = row;
    w.bar.arrive_and_wait();
    for (int m = 0; m < 4; m++) {
        const half_bits* const* mat = w.rows + 8 * m;
        const half_bits lo = trans ? mat[2 * t][g] : mat[g][2 * t];
        const half_bits hi = trans ? mat[2 * t + 1][g] : mat[g][2 * t + 1];
        r[m] = (unsigned)lo | (unsigned)hi << 16;
    }
    w.bar.arrive_and_wait();
}

// Driver input/output: `driver IN OUT`. emu_input opens IN (exits 2 on a wrong command line), emu_read
// reads n values (exits 2 on a short file), emu_write writes the parts to OUT in order (exits 2 on failure).
inline FILE* emu_input(int argc, char** argv) {
    FILE* in = argc == 3 ? fopen(argv[1], "rb") : nullptr;
    if (!in) {
        fprintf(stderr, "usage: %s IN OUT (IN readable)\n", argv[0]);
        std::exit(2);
    }
    return in;
}

template <class T>
std::vector<T> emu_read(FILE* in, size_t n) {
    std::vector<T> v(n);
    if (n && fread(v.data(), sizeof(T), n, in) != n) {
        fprintf(stderr, "short input\n");
        std::exit(2);
    }
    return v;
}

inline void emu_write(const char* path, std::initializer_list<std::pair<const void*, size_t>> parts) {
    FILE* out = fopen(path, "wb");
    bool ok = out != nullptr;
    for (auto [data, bytes] : parts) ok = ok && fwrite(data, 1, bytes, out) == bytes;
    if (!ok || fclose(out) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        std::exit(2);
    }
}
