//! Mixture of experts (Qwen3-MoE): a linear router scores every expert per token, softmax,
//! the top k experts run, their outputs summed with the routing weights (renormalised over
//! the k when `norm_topk_prob`).
//!
//! Tokens are grouped by expert first, so each active expert multiplies all of its rows of
//! the step at once (one matmul per expert and projection, on lathe's quantized kernels where
//! the weights are quantized), never one token at a time.

use candle_core::{DType, Device, Result, Tensor};

use super::{GatedMlp, Linear};

#[derive(Debug, Clone)]
pub struct SparseMoe {
    /// `[num_experts, hidden]`: one routing logit per expert.
    pub router: Linear,
    pub experts: Vec<GatedMlp>,
    pub top_k: usize,
    pub norm_topk_prob: bool,
}

/// Which rows of the step go to each expert, and with what weight.
#[derive(Debug, Default, PartialEq)]
pub struct Routing {
    /// Per expert: `(rows, weights)`, rows ascending.
    pub per_expert: Vec<(Vec<u32>, Vec<f32>)>,
}

impl Routing {
    /// Softmax over each row of `logits` (`[T][E]`), top `k` (ties to the lower expert id),
    /// weights renormalised over the k when `normalize`.
    pub fn from_logits(logits: &[Vec<f32>], k: usize, normalize: bool) -> Self {
        let experts = logits.first().map_or(0, Vec::len);
        let mut per_expert = vec![(Vec::new(), Vec::new()); experts];
        let mut order: Vec<usize> = Vec::with_capacity(experts);
        for (row, l) in logits.iter().enumerate() {
            let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = l.iter().map(|&x| (x - max).exp()).collect();
            let total: f32 = exp.iter().sum();
            order.clear();
            order.extend(0..experts);
            // Stable: equal probabilities keep the lower expert first.
            order.sort_by(|&a, &b| exp[b].total_cmp(&exp[a]));
            let chosen = &order[..k.min(experts)];
            let chosen_sum: f32 = chosen.iter().map(|&e| exp[e] / total).sum();
            for &e in chosen {
                let p = exp[e] / total;
                per_expert[e].0.push(row as u32);
                per_expert[e]
                    .1
                    .push(if normalize { p / chosen_sum } else { p });
            }
        }
        Self { per_expert }
    }
}

impl SparseMoe {
    /// `x [T, H] -> [T, H]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self.router.forward(x)?.to_dtype(DType::F32)?.to_vec2()?;
        let routing = Routing::from_logits(&logits, self.top_k, self.norm_topk_prob);
        let mut out = x.zeros_like()?;
        for (expert, (rows, weights)) in self.experts.iter().zip(&routing.per_expert) {
            if rows.is_empty() {
                continue;
            }
            let idx = Tensor::new(rows.as_slice(), x.device())?;
            let y = expert.forward(&x.index_select(&idx, 0)?)?;
            let w = Tensor::from_slice(weights, (rows.len(), 1), &Device::Cpu)?
                .to_device(x.device())?
                .to_dtype(y.dtype())?;
            out = out.index_add(&idx, &y.broadcast_mul(&w)?, 0)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_picks_the_largest_and_renormalises() {
        let logits = vec![vec![0.0, 2.0, 1.0, 2.0], vec![3.0, 0.0, 0.0, 0.0]];
        let r = Routing::from_logits(&logits, 2, true);
        // Row 0: experts 1 and 3 tie at the top (the lower first); row 1: expert 0, then 1.
        assert_eq!(r.per_expert[0].0, vec![1]);
        assert_eq!(r.per_expert[1].0, vec![0, 1]);
        assert_eq!(r.per_expert[2].0, Vec::<u32>::new());
        assert_eq!(r.per_expert[3].0, vec![0]);
        assert!((r.per_expert[1].1[0] - 0.5).abs() < 1e-6);
        assert!((r.per_expert[3].1[0] - 0.5).abs() < 1e-6);
        let e3 = 3f32.exp();
        assert!((r.per_expert[0].1[0] - e3 / (e3 + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn without_normalisation_weights_are_the_softmax() {
        let r = Routing::from_logits(&[vec![1.0, 0.0]], 1, false);
        let p = 1f32.exp() / (1f32.exp() + 1.0);
        assert!((r.per_expert[0].1[0] - p).abs() < 1e-6);
        assert!(r.per_expert[1].0.is_empty());
    }
}
