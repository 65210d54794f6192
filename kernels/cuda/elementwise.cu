// Element-wise kernels: bias + activation epilogues of the GEMMs, sums, layout transposes, f16 casts.

// x [C, plane] (channel-major volume): x = act(x + bias[c]); bias may be null.
extern "C" __global__ void bias_act_channels(float* x, const float* bias, long long n, long long plane, int act) {
    const int pl = (int)plane;
    FOR_EACH(i, n) {
        float v = x[i];
        if (bias) v += bias[i / pl];
        x[i] = activate(v, act);
    }
}

// x [rows, C] (token matrix): x = act(x + bias[c]); bias may be null.
extern "C" __global__ void bias_act_rows(float* x, const float* bias, long long n, int c, int act) {
    FOR_EACH(i, n) {
        float v = x[i];
        if (bias) v += bias[i % c];
        x[i] = activate(v, act);
    }
}

// y16 [rows, C] = f16(act(x + bias[c])): the epilogue of a GEMM whose result only feeds an fp16 GEMM.
extern "C" __global__ void bias_act_rows_h(const float* x, const float* bias, half_bits* y, long long n, int c, int act) {
    FOR_EACH(i, n) {
        float v = x[i];
        if (bias) v += bias[i % c];
        y[i] = f32_to_f16(activate(v, act));
    }
}

// a += b
extern "C" __global__ void add_inplace(float* a, const float* b, long long n) {
    FOR_EACH(i, n) a[i] += b[i];
}

// dst [cols, rows] = src [rows, cols]ᵀ, 32x32 tiles through shared memory (block 32x8).
extern "C" __global__ void transpose2d(const float* src, float* dst, int rows, int cols) {
    __shared__ float tile[32][33];
    int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int j = threadIdx.y; j < 32; j += 8) {
        int r = r0 + j, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[j][threadIdx.x] = src[(long long)r * cols + c];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < 32; j += 8) {
        int c = c0 + j, r = r0 + threadIdx.x;
        if (r < rows && c < cols) dst[(long long)c * rows + r] = tile[threadIdx.x][j];
    }
}

// f32 -> f16 (round to nearest even) for the GEMM operands of the fp16 path.
extern "C" __global__ void to_f16(const float* x, half_bits* y, long long n) {
    FOR_EACH(i, n) y[i] = f32_to_f16(x[i]);
}

// x [n, C] += pos[i / per] (the audio transformer's per-slice scalar, broadcast over channels and space).
extern "C" __global__ void add_row_group_scalar(float* x, const float* pos, long long n, int c, int per) {
    FOR_EACH(i, n) x[i] += pos[(i / c) / per];
}
