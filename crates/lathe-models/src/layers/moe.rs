//! Mixture of experts (Qwen3-MoE): a linear router scores every expert per token, softmax,
//! the top k experts run, their outputs summed with the routing weights (renormalised over
//! the k when `norm_topk_prob`).
//!
//! Tokens are grouped by expert first, so each active expert multiplies all of its rows of
//! the step at once, never one token at a time. On lathe's CPU kernels the experts of a step
//! run as one grouped matmul per projection (`QuantMatrix::matmul_grouped`: one job list on the
//! pool for gate+up of every active expert, one for down); elsewhere (CUDA, dense safetensors
//! weights) each active expert is one call of candle's ops.

use candle_core::{DType, Device, Result, Tensor};
use lathe_kernels::cpu::QuantMatrix;

use super::{GatedMlp, Linear, LinearGroup};

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
        match self.cpu_experts() {
            Some((gate_up, down)) if x.device().is_cpu() && x.dtype() == DType::F32 => {
                grouped_forward(x, &routing, &gate_up, &down)
            }
            _ => self.per_expert_forward(x, &routing),
        }
    }

    /// Every expert's fused gate+up and down matrices, when all run on lathe's CPU kernels.
    fn cpu_experts(&self) -> Option<(Vec<&QuantMatrix>, Vec<&QuantMatrix>)> {
        self.experts
            .iter()
            .map(|e| match &e.gate_up {
                LinearGroup::Fused(l, _) => {
                    Some((l.lathe_matrix()?.as_ref(), e.down.lathe_matrix()?.as_ref()))
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|pairs| pairs.into_iter().unzip())
    }

    /// One call of candle's ops per active expert over its rows.
    fn per_expert_forward(&self, x: &Tensor, routing: &Routing) -> Result<Tensor> {
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

/// The step's rows gathered in expert order, gate+up of every active expert as one grouped
/// matmul, SiLU·up, down as one grouped matmul, and each row's expert outputs added back with
/// their routing weights (in expert order, as `per_expert_forward` adds them).
fn grouped_forward(
    x: &Tensor,
    routing: &Routing,
    gate_up: &[&QuantMatrix],
    down: &[&QuantMatrix],
) -> Result<Tensor> {
    let (t, h) = x.dims2()?;
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let active: Vec<usize> = (0..routing.per_expert.len())
        .filter(|&e| !routing.per_expert[e].0.is_empty())
        .collect();
    let mut starts = vec![0];
    let total: usize = routing.per_expert.iter().map(|(r, _)| r.len()).sum();
    let mut gathered = Vec::with_capacity(total * h);
    for &e in &active {
        for &r in &routing.per_expert[e].0 {
            gathered.extend_from_slice(&xs[r as usize * h..(r as usize + 1) * h]);
        }
        starts.push(starts.last().unwrap() + routing.per_expert[e].0.len());
    }
    let m = *starts.last().unwrap();
    if m == 0 {
        return x.zeros_like();
    }
    let parts: Vec<&QuantMatrix> = active.iter().map(|&e| gate_up[e]).collect();
    let two_i = parts[0].rows();
    let mut gu = vec![0f32; m * two_i];
    QuantMatrix::matmul_grouped(&parts, &starts, &gathered, &mut gu);
    let act = lathe_kernels::ops::silu_and_mul(&Tensor::from_vec(gu, (m, two_i), &Device::Cpu)?)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let parts: Vec<&QuantMatrix> = active.iter().map(|&e| down[e]).collect();
    let mut y = vec![0f32; m * h];
    QuantMatrix::matmul_grouped(&parts, &starts, &act, &mut y);
    let mut out = vec![0f32; t * h];
    let mut row = 0;
    for &e in &active {
        let (rows, weights) = &routing.per_expert[e];
        for (&r, &w) in rows.iter().zip(weights) {
            let dst = &mut out[r as usize * h..(r as usize + 1) * h];
            for (o, v) in dst.iter_mut().zip(&y[row * h..(row + 1) * h]) {
                *o += w * v;
            }
            row += 1;
        }
    }
    Tensor::from_vec(out, (t, h), x.device())
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QTensor};

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

    /// A linear over fresh random weights, quantized to `dtype` on lathe's kernels.
    fn random_linear(rows: usize, cols: usize, dtype: GgmlDType) -> Linear {
        let w = Tensor::randn(0f32, 0.2, (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        Linear::from_quant_matrix(QuantMatrix::from_qtensor(&q).unwrap().unwrap(), None)
    }

    /// The grouped CPU path gives bit for bit what one call per expert gives.
    #[test]
    fn grouped_experts_equal_one_call_per_expert() {
        let (h, width, experts) = (64, 32, 6);
        let moe = SparseMoe {
            router: random_linear(experts, h, GgmlDType::Q8_0),
            experts: (0..experts)
                .map(|_| {
                    GatedMlp::new(
                        random_linear(width, h, GgmlDType::Q8_0),
                        random_linear(width, h, GgmlDType::Q8_0),
                        random_linear(h, width, GgmlDType::Q8_0),
                    )
                    .unwrap()
                })
                .collect(),
            top_k: 2,
            norm_topk_prob: true,
        };
        let (gate_up, down) = moe.cpu_experts().expect("every expert on lathe's kernels");
        for t in [1, 7, 40] {
            let x = Tensor::randn(0f32, 1.0, (t, h), &Device::Cpu).unwrap();
            let logits = moe.router.forward(&x).unwrap().to_vec2().unwrap();
            let routing = Routing::from_logits(&logits, 2, true);
            let grouped = grouped_forward(&x, &routing, &gate_up, &down).unwrap();
            let each = moe.per_expert_forward(&x, &routing).unwrap();
            let (g, e): (Vec<f32>, Vec<f32>) = (
                grouped.flatten_all().unwrap().to_vec1().unwrap(),
                each.flatten_all().unwrap().to_vec1().unwrap(),
            );
            assert!(g.iter().all(|v| v.is_finite()));
            assert!(g == e, "t={t}");
        }
    }

    #[test]
    fn without_normalisation_weights_are_the_softmax() {
        let r = Routing::from_logits(&[vec![1.0, 0.0]], 1, false);
        let p = 1f32.exp() / (1f32.exp() + 1.0);
        assert!((r.per_expert[0].1[0] - p).abs() < 1e-6);
        assert!(r.per_expert[1].0.is_empty());
    }
}
