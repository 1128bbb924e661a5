//! Layers shared by every architecture. `attention` is the only module that knows the KV cache
//! is paged; architectures compose these and never touch the cache themselves.

mod attention;
mod embedding;
mod linear;
mod linear_group;
mod mlp;
mod norm;
mod rotary;

pub use attention::PagedAttentionLayer;
pub use embedding::Embedding;
pub(crate) use linear::candle_forced;
pub use linear::Linear;
pub use linear_group::LinearGroup;
pub use mlp::GatedMlp;
pub use norm::RmsNorm;
pub use rotary::{RopeScaling, RotaryEmbedding};
