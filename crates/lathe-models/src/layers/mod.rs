//! Layers shared by every architecture. `attention` is the only module that knows the KV cache
//! is paged; architectures compose these and never touch the cache themselves.

mod attention;
mod embedding;
mod linear;
mod linear_group;
mod mlp;
mod moe;
mod norm;
mod rotary;
mod self_attention;

pub use attention::PagedAttentionLayer;
pub use embedding::Embedding;
pub(crate) use linear::candle_forced;
pub use linear::Linear;
pub use linear_group::LinearGroup;
pub use mlp::{Activation, FeedForward, GatedMlp, PlainMlp};
pub use moe::{Routing, SparseMoe};
pub use norm::{LayerNorm, Norm, RmsNorm};
pub use rotary::{RopeScaling, RotaryEmbedding};
pub use self_attention::SelfAttention;
