//! Token embedding lookup: from a dense table, or (GGUF on the CPU) straight from the packed
//! quantized weights — only the looked-up rows are ever dequantized, so the 0.5B's 152k×896
//! table stays ~0.14 GB in Q5_0 instead of 0.55 GB in f32.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};
use lathe_kernels::cpu::QuantMatrix;

#[derive(Debug, Clone)]
pub enum Embedding {
    /// `[vocab, hidden]` in the activation dtype.
    Table(Tensor),
    /// `[vocab, hidden]` on lathe's CPU kernels; rows come out in f32.
    Quantized(Arc<QuantMatrix>),
}

impl Embedding {
    pub fn new(table: Tensor) -> Self {
        Self::Table(table)
    }

    /// `ids [T] u32 -> [T, hidden]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Table(table) => table.index_select(ids, 0),
            Self::Quantized(m) => {
                let ids = ids.to_dtype(DType::U32)?.to_vec1::<u32>()?;
                if let Some(bad) = ids.iter().find(|&&i| i as usize >= m.rows()) {
                    candle_core::bail!(
                        "token id {bad} is outside the {}-token vocabulary",
                        m.rows()
                    )
                }
                let mut out = vec![0f32; ids.len() * m.cols()];
                m.dequantize_rows(&ids, &mut out);
                Tensor::from_vec(out, (ids.len(), m.cols()), &Device::Cpu)
            }
        }
    }

    /// The dense table, when there is one (a tied LM head of safetensors weights reuses it).
    pub fn table(&self) -> Option<&Tensor> {
        match self {
            Self::Table(t) => Some(t),
            Self::Quantized(_) => None,
        }
    }
}
