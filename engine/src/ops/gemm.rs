//! Matrix products through the `gemm` crate (AVX2/AVX-512 kernels, rayon-parallel in the current pool).

use gemm::Parallelism;

/// A read-only strided matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major `rows x cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `c[m x n] (row stride c_rs) = (accumulate ? c : 0) + a[m x k] * b[k x n]`, parallel in the current
/// rayon pool when the product is big enough.
pub fn matmul(a: MatRef, b: MatRef, c: &mut [f32], c_rs: usize, accumulate: bool) {
    let big = a.rows * b.cols * a.cols > 32 * 1024;
    matmul_impl(a, b, c, c_rs, accumulate, big && rayon::current_num_threads() > 1);
}

/// [`matmul`] on the calling thread only: for products inside an already parallel loop.
pub fn matmul_serial(a: MatRef, b: MatRef, c: &mut [f32], c_rs: usize, accumulate: bool) {
    matmul_impl(a, b, c, c_rs, accumulate, false);
}

fn matmul_impl(a: MatRef, b: MatRef, c: &mut [f32], c_rs: usize, accumulate: bool, parallel: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul: inner dimensions differ");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * c_rs + n <= c.len() && n <= c_rs, "matmul: output out of bounds");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * c_rs..i * c_rs + n].fill(0.0);
            }
        }
        return;
    }
    let par = if parallel { Parallelism::Rayon(0) } else { Parallelism::None };
    // SAFETY: every index the kernel touches was bounds-checked above (views and output extent).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_with_transposes_and_accumulation() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect(); // [n, k]
        let mut c = vec![1.0; m * n];
        matmul(MatRef::new(&a, m, k), MatRef::new(&bt, n, k).t(), &mut c, n, true);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum::<f32>();
                assert!((c[i * n + j] - want).abs() < 1e-5);
            }
        }
    }
}
