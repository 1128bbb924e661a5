//! The feed-forward halves of decoder blocks: gated SiLU (llama, qwen), a plain two-layer MLP
//! with GELU (starcoder2), and a mixture of experts (`moe.rs`).

use candle_core::{Result, Tensor};

use super::{Linear, LinearGroup, SparseMoe};

/// `down(silu(gate(x)) · up(x))`.
#[derive(Debug, Clone)]
pub struct GatedMlp {
    /// Gate and up projections (gate first), fused into one matmul where possible.
    pub gate_up: LinearGroup,
    pub down: Linear,
}

impl GatedMlp {
    pub fn new(gate: Linear, up: Linear, down: Linear) -> Result<Self> {
        Ok(Self {
            gate_up: LinearGroup::new(vec![gate, up])?,
            down,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let act = lathe_kernels::ops::silu_and_mul(&self.gate_up.forward_cat(x)?)?;
        self.down.forward(&act)
    }
}

/// The activation of a plain MLP (HF `hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu_pytorch_tanh` / `gelu_new`: the tanh approximation.
    GeluTanh,
    /// `gelu`: the exact erf form.
    GeluErf,
}

impl Activation {
    /// The HF `hidden_act` name; `None` for ones lathe lacks.
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Some(Self::GeluTanh),
            "gelu" => Some(Self::GeluErf),
            _ => None,
        }
    }
}

/// `down(act(up(x)))`, both with optional bias.
#[derive(Debug, Clone)]
pub struct PlainMlp {
    pub up: Linear,
    pub down: Linear,
    pub act: Activation,
}

impl PlainMlp {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.up.forward(x)?;
        let h = match self.act {
            Activation::GeluTanh => h.gelu()?,
            Activation::GeluErf => h.gelu_erf()?,
        };
        self.down.forward(&h)
    }
}

/// The feed-forward half of one decoder block.
#[derive(Debug, Clone)]
pub enum FeedForward {
    Gated(GatedMlp),
    Plain(PlainMlp),
    Moe(SparseMoe),
}

impl FeedForward {
    /// `x [T, H] -> [T, H]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gated(m) => m.forward(x),
            Self::Plain(m) => m.forward(x),
            Self::Moe(m) => m.forward(x),
        }
    }
}
