// Shared helpers for every DTFSal kernel. No system headers: the same text compiles with nvcc at build
// time and with NVRTC at run time (the sources are concatenated, this file first).

typedef unsigned short half_bits;  // IEEE binary16 storage; converted with PTX cvt (no cuda_fp16.h)

#ifdef DTFSAL_EMULATE
// kernels/emu (the CPU emulation the kernel tests run) supplies the conversions
#else
__device__ __forceinline__ half_bits f32_to_f16(float f) {
    half_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float f16_to_f32(half_bits h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
#endif

// Activation codes shared with kernels/src/ops.rs `Act`.
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_GELU 2
#define ACT_SIGMOID 3

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float activate(float x, int act) {
    switch (act) {
        case ACT_RELU: return fmaxf(x, 0.0f);
        case ACT_GELU: return gelu_erf(x);
        case ACT_SIGMOID: return sigmoidf(x);
        default: return x;
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the total.
__device__ __forceinline__ float block_sum(float v, float* shared /* >= 33 floats */) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < warps ? shared[lane] : 0.0f;
        t = warp_sum(t);
        if (lane == 0) shared[32] = t;
    }
    __syncthreads();
    return shared[32];
}

__device__ __forceinline__ float block_max(float v, float* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < warps ? shared[lane] : -3.402823466e38f;
        t = warp_max(t);
        if (lane == 0) shared[32] = t;
    }
    __syncthreads();
    return shared[32];
}

// Grid-stride loop over n elements, with a 32-bit index (the launch wrappers check n < 2^31): index math on
// it stays 32-bit, where a 64-bit division is a long software sequence on the GPU.
#define FOR_EACH(i, n) for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)
