//! The OpenAI wire format as serde types: what clients send (`*Request`, deserialized
//! leniently: unknown fields are ignored, every field is optional unless OpenAI requires it) and
//! what we answer (`*Response`, `*Chunk`). No logic lives here; `validation` turns requests into
//! `Valid*` types.

pub mod anthropic;
pub mod chat;
pub mod common;
pub mod completions;
pub mod infill;
pub mod misc;
pub mod responses;

pub use anthropic::*;
pub use chat::*;
pub use common::*;
pub use completions::*;
pub use infill::*;
pub use misc::*;
pub use responses::*;
