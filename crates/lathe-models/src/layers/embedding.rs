//! Token embedding lookup.

use candle_core::{Result, Tensor};

#[derive(Debug, Clone)]
pub struct Embedding {
    /// `[vocab, hidden]` in the activation dtype.
    table: Tensor,
}

impl Embedding {
    pub fn new(table: Tensor) -> Self {
        Self { table }
    }

    /// `ids [T] u32 -> [T, hidden]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.table.index_select(ids, 0)
    }

    pub fn table(&self) -> &Tensor {
        &self.table
    }
}
