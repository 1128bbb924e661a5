//! The server through `app()` without a socket (`tower::ServiceExt::oneshot`), over one shared
//! engine serving the default model. One binary, so the model loads once.

mod common;

mod anthropic;
mod chat;
mod completions;
mod errors;
mod hostile;
mod misc;
mod responses;
mod tools;
