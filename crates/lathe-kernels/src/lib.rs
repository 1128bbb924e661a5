//! lathe's kernels.
//!
//! - `reference`: plain-Rust twins of every CUDA kernel (the CPU path and the test oracle).
//! - `ops`: candle ops with one signature for every device; the model calls only these.
//! - `cpu`: our own SIMD quantized matmul kernels for the CPU path.
//! - `cuda` (feature `cuda`): PTX of kernels/ compiled by build.rs, loaded at run time.

pub mod cpu;
pub mod ops;
pub mod reference;

#[cfg(feature = "cuda")]
mod cuda;

pub use reference::{AttentionOptions, AttentionShape, RopeStyle};
