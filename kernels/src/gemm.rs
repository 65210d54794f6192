//! Row-major GEMMs through cuBLAS (column-major underneath: a row-major `C = A·B` is the column-major
//! `Cᵀ = Bᵀ·Aᵀ`, so the operands swap and no data moves). f32 operands run pure-fp32 SGEMM-class
//! products; f16 operands run on tensor cores with f32 accumulation and an f32 result.

use cudarc::cublas::{result, sys};

use crate::KernelError;
use crate::buffer::{View, ViewMut};
use crate::device::Gpu;

/// A GEMM operand's storage.
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    F32(View<'a, f32>),
    /// IEEE binary16 bits.
    F16(View<'a, u16>),
}

/// A row-major matrix operand: `[rows, cols]` with row stride `ld`, or with `trans` its transpose
/// (stored `[cols, rows]`).
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: Operand<'a>,
    pub ld: usize,
    pub trans: bool,
}

impl<'a> Mat<'a> {
    pub fn f32(v: View<'a, f32>, ld: usize) -> Self {
        Self { data: Operand::F32(v), ld, trans: false }
    }

    pub fn f16(v: View<'a, u16>, ld: usize) -> Self {
        Self { data: Operand::F16(v), ld, trans: false }
    }

    /// Use the transpose of the stored matrix.
    pub fn t(self) -> Self {
        Self { trans: !self.trans, ..self }
    }

    /// Checks that a `[rows, cols]` operand (after `trans`) plus `batch` strided copies is in bounds.
    fn ptr(&self, rows: usize, cols: usize, count: usize, stride: usize, what: &str) -> (u64, bool) {
        let (r, c) = if self.trans { (cols, rows) } else { (rows, cols) };
        assert!(c <= self.ld, "{what}: row stride {} < {c} columns", self.ld);
        let extent = (r - 1) * self.ld + c + (count - 1) * stride;
        match self.data {
            Operand::F32(v) => (v.need(extent, what), false),
            Operand::F16(v) => (v.need(extent, what), true),
        }
    }
}

/// Strided batch of products (`count` = 1: a single GEMM).
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub count: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
}

impl Batch {
    pub const ONE: Batch = Batch { count: 1, stride_a: 0, stride_b: 0, stride_c: 0 };
}

impl Gpu {
    /// `c [m, n]` (row stride `ldc`) `= alpha · A [m, k] · B [k, n] + beta · c`, for each of `batch`.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(&self, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut ViewMut<f32>, ldc: usize, alpha: f32, beta: f32, batch: Batch) -> Result<(), KernelError> {
        if m == 0 || n == 0 {
            return Ok(());
        }
        assert!(n <= ldc && batch.count > 0);
        let pc = c.need((m - 1) * ldc + n + (batch.count - 1) * batch.stride_c, "gemm C");
        self.gemm_to(m, n, k, a, b, (pc, false), ldc, alpha, beta, batch)
    }

    /// As [`Gpu::gemm`] with an f16 result (f16 operands, f32 accumulation: fp16 autocast's products).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_f16_out(&self, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut ViewMut<u16>, ldc: usize, alpha: f32, beta: f32, batch: Batch) -> Result<(), KernelError> {
        if m == 0 || n == 0 {
            return Ok(());
        }
        assert!(n <= ldc && batch.count > 0);
        let pc = c.need((m - 1) * ldc + n + (batch.count - 1) * batch.stride_c, "gemm C");
        self.gemm_to(m, n, k, a, b, (pc, true), ldc, alpha, beta, batch)
    }

    /// The cuBLAS call behind both: `c` is a checked device address and whether it holds f16.
    #[allow(clippy::too_many_arguments)]
    fn gemm_to(&self, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: (u64, bool), ldc: usize, alpha: f32, beta: f32, batch: Batch) -> Result<(), KernelError> {
        assert!(k > 0);
        let (pa, ha) = a.ptr(m, k, batch.count, batch.stride_a, "gemm A");
        let (pb, hb) = b.ptr(k, n, batch.count, batch.stride_b, "gemm B");
        assert_eq!(ha, hb, "gemm: both operands must have the same precision");
        assert!(ha || !c.1, "gemm: an f16 result needs f16 operands");
        let (pc, c_dtype) = (c.0, if c.1 { sys::cudaDataType_t::CUDA_R_16F } else { sys::cudaDataType_t::CUDA_R_32F });
        let op = |t: bool| if t { sys::cublasOperation_t::CUBLAS_OP_T } else { sys::cublasOperation_t::CUBLAS_OP_N };
        let dtype = if ha { sys::cudaDataType_t::CUDA_R_16F } else { sys::cudaDataType_t::CUDA_R_32F };
        let i = |v: usize| i32::try_from(v).expect("gemm dimension exceeds i32");
        // SAFETY: every operand extent was bounds-checked against its view above; the handle is bound to
        // this device's stream, and the scalars live across the (stream-ordered) call.
        let r = unsafe {
            result::gemm_strided_batched_ex(
                *self.blas.handle(),
                op(b.trans),
                op(a.trans),
                i(n),
                i(m),
                i(k),
                (&alpha) as *const f32 as *const _,
                pb as *const _,
                dtype,
                i(b.ld),
                batch.stride_b as i64,
                pa as *const _,
                dtype,
                i(a.ld),
                batch.stride_a as i64,
                (&beta) as *const f32 as *const _,
                pc as *mut _,
                c_dtype,
                i(ldc),
                batch.stride_c as i64,
                i(batch.count),
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        };
        r.map_err(|e| KernelError::Cublas(format!("{e:?}")))
    }
}
