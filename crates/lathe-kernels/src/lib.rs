//! lathe's kernels.
//!
//! - `reference`: plain-Rust twins of every CUDA kernel (the test oracle; the CPU path for
//!   f16/bf16).
//! - `ops`: candle ops with one signature for every device; the model calls only these.
//! - `cpu`: our own SIMD CPU kernels: quantized matmuls, f32 attention and row-wise ops.
//! - `cuda` (feature `cuda`): PTX of kernels/ compiled by build.rs, loaded at run time.

pub mod cpu;
pub mod ops;
pub mod reference;

#[cfg(feature = "cuda")]
mod cuda;

pub use reference::{AttentionOptions, AttentionShape, RopeStyle};
