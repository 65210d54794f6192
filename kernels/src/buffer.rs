//! Device buffers and bounds-checked views of them, passed to the launch wrappers as raw device
//! addresses (one stream, event tracking off: ordering comes from the stream).

use std::marker::PhantomData;

use cudarc::driver::{CudaSlice, DevicePtr, DeviceRepr};

/// An owned device buffer of `len` elements of `T` (f32 activations and weights, u16 = f16 bits).
pub struct Buf<T: DeviceRepr> {
    pub(crate) slice: CudaSlice<T>,
    pub(crate) ptr: u64,
}

impl<T: DeviceRepr> Buf<T> {
    pub(crate) fn new(slice: CudaSlice<T>) -> Self {
        let ptr = {
            let stream = slice.stream().clone();
            let (p, _sync) = slice.device_ptr(&stream);
            p
        };
        Self { slice, ptr }
    }

    pub fn len(&self) -> usize {
        self.slice.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slice.is_empty()
    }

    /// The whole buffer, read-only.
    pub fn view(&self) -> View<'_, T> {
        View { ptr: self.ptr, len: self.len(), _p: PhantomData }
    }

    /// The whole buffer, writable.
    pub fn view_mut(&mut self) -> ViewMut<'_, T> {
        ViewMut { ptr: self.ptr, len: self.len(), _p: PhantomData }
    }

    /// Elements `offset .. offset + len` (panics when out of bounds).
    pub fn slice(&self, offset: usize, len: usize) -> View<'_, T> {
        self.view().slice(offset, len)
    }

    pub fn slice_mut(&mut self, offset: usize, len: usize) -> ViewMut<'_, T> {
        assert!(offset + len <= self.len(), "device slice {offset}+{len} out of {}", self.len());
        ViewMut { ptr: self.ptr + (offset * size_of::<T>()) as u64, len, _p: PhantomData }
    }
}

/// A read-only range of a device buffer.
#[derive(Clone, Copy)]
pub struct View<'a, T> {
    pub(crate) ptr: u64,
    pub(crate) len: usize,
    _p: PhantomData<&'a T>,
}

impl<'a, T> View<'a, T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn slice(self, offset: usize, len: usize) -> Self {
        assert!(offset + len <= self.len, "device slice {offset}+{len} out of {}", self.len);
        Self { ptr: self.ptr + (offset * size_of::<T>()) as u64, len, _p: PhantomData }
    }

    /// Panics unless at least `n` elements are in view (every launch wrapper checks its extents).
    pub(crate) fn need(self, n: usize, what: &str) -> u64 {
        assert!(n <= self.len, "{what}: kernel reads {n} elements, view has {}", self.len);
        self.ptr
    }
}

/// A writable range of a device buffer.
pub struct ViewMut<'a, T> {
    pub(crate) ptr: u64,
    pub(crate) len: usize,
    _p: PhantomData<&'a mut T>,
}

impl<'a, T> ViewMut<'a, T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn slice(self, offset: usize, len: usize) -> Self {
        assert!(offset + len <= self.len, "device slice {offset}+{len} out of {}", self.len);
        Self { ptr: self.ptr + (offset * size_of::<T>()) as u64, len, _p: PhantomData }
    }

    /// Reborrows for a shorter lifetime.
    pub fn reborrow(&mut self) -> ViewMut<'_, T> {
        ViewMut { ptr: self.ptr, len: self.len, _p: PhantomData }
    }

    /// Read-only view of the same range.
    pub fn as_view(&self) -> View<'_, T> {
        View { ptr: self.ptr, len: self.len, _p: PhantomData }
    }

    pub(crate) fn need(&self, n: usize, what: &str) -> u64 {
        assert!(n <= self.len, "{what}: kernel writes {n} elements, view has {}", self.len);
        self.ptr
    }
}

/// A null pointer for optional kernel arguments (bias, residual).
pub(crate) fn opt_ptr<T>(v: Option<View<'_, T>>, n: usize, what: &str) -> u64 {
    v.map_or(0, |v| v.need(n, what))
}
