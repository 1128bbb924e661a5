//! Mixture of experts (Qwen3-MoE): a linear router scores every expert per token, softmax,
//! the top k experts run, their outputs summed with the routing weights (renormalised over
//! the k when `norm_topk_prob`).
//!
//! Tokens are grouped by expert first, so each active expert multiplies all of its rows of
//! the step at once, never one token at a time. On lathe's CPU kernels the experts of a step
//! run as one grouped matmul per projection (`QuantMatrix::matmul_grouped`: one job list on the
//! pool for gate+up of every active expert, one for down); elsewhere (CUDA, dense safetensors
//! weights) routing and combine are lathe's kernels (kernels/moe.cu) and each active expert is
//! one call of candle's ops.

use candle_core::{DType, Device, Result, Tensor};
use lathe_kernels::cpu::QuantMatrix;
use lathe_kernels::reference;

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
    /// Softmax over each row of `logits` (`[T, E]`, flat), top `k` (ties to the lower expert
    /// id), weights renormalised over the k when `normalize`: the kernels' CPU twin
    /// (`lathe_kernels::reference::moe_topk_softmax`), regrouped by expert.
    pub fn from_logits(logits: &[f32], experts: usize, k: usize, normalize: bool) -> Self {
        let tokens = logits.len() / experts.max(1);
        let mut packed = vec![0f32; tokens * 2 * k];
        reference::moe_topk_softmax(logits, experts, k, normalize, &mut packed);
        let mut per_expert = vec![(Vec::new(), Vec::new()); experts];
        for (t, row) in packed.chunks(2 * k).enumerate() {
            let mut chosen: Vec<(usize, f32)> =
                (0..k).map(|j| (row[j] as usize, row[k + j])).collect();
            // Each expert's rows ascend; per token, experts in id order.
            chosen.sort_by_key(|c| c.0);
            for (e, w) in chosen {
                per_expert[e].0.push(t as u32);
                per_expert[e].1.push(w);
            }
        }
        Self { per_expert }
    }
}

impl SparseMoe {
    /// `x [T, H] -> [T, H]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self.router.forward(x)?.to_dtype(DType::F32)?;
        match self.cpu_experts() {
            Some((gate_up, down)) if x.device().is_cpu() && x.dtype() == DType::F32 => {
                let experts = self.experts.len();
                let flat = logits.flatten_all()?.to_vec1::<f32>()?;
                let routing = Routing::from_logits(&flat, experts, self.top_k, self.norm_topk_prob);
                grouped_forward(x, &routing, &gate_up, &down)
            }
            _ => self.per_expert_forward(x, &logits),
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

    /// Routing and combine on the model's device (lathe's kernels in kernels/moe.cu on CUDA,
    /// their twins on the CPU); one call of candle's ops per active expert over its rows. Only
    /// the chosen ids come to the host, to group the rows.
    fn per_expert_forward(&self, x: &Tensor, logits: &Tensor) -> Result<Tensor> {
        let (t, k) = (x.dim(0)?, self.top_k);
        if t == 0 {
            return x.zeros_like();
        }
        let (ids, weights) = lathe_kernels::ops::moe_topk_softmax(logits, k, self.norm_topk_prob)?;
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        // Per expert, its (token · k + slot) entries, tokens ascending.
        let mut per_expert: Vec<Vec<usize>> = vec![Vec::new(); self.experts.len()];
        for (slot, &e) in ids.iter().enumerate() {
            per_expert[e as usize].push(slot);
        }
        let (mut rows, mut outputs, mut next) = (vec![0u32; t * k], Vec::new(), 0u32);
        for (expert, slots) in self.experts.iter().zip(&per_expert) {
            if slots.is_empty() {
                continue;
            }
            let tokens: Vec<u32> = slots.iter().map(|&s| (s / k) as u32).collect();
            let idx = Tensor::new(tokens.as_slice(), x.device())?;
            outputs.push(expert.forward(&x.index_select(&idx, 0)?)?);
            for &s in slots {
                rows[s] = next;
                next += 1;
            }
        }
        let y = Tensor::cat(&outputs, 0)?;
        let rows = Tensor::new(rows.as_slice(), x.device())?;
        lathe_kernels::ops::moe_combine(&y, &rows, &weights)
    }
}

/// The step's rows gathered in expert order, gate+up of every active expert as one grouped
/// matmul, SiLU·up, down as one grouped matmul, and each row's expert outputs added back with
/// their routing weights, in expert order.
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
        let logits = [0.0, 2.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0];
        let r = Routing::from_logits(&logits, 4, 2, true);
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

    /// The grouped CPU path gives what the device path (routing and combine ops, one call per
    /// expert) gives, up to the order of the k additions per token.
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
            let logits = moe.router.forward(&x).unwrap();
            let flat = logits.flatten_all().unwrap().to_vec1().unwrap();
            let routing = Routing::from_logits(&flat, experts, 2, true);
            let grouped = grouped_forward(&x, &routing, &gate_up, &down).unwrap();
            let each = moe.per_expert_forward(&x, &logits).unwrap();
            let (g, e): (Vec<f32>, Vec<f32>) = (
                grouped.flatten_all().unwrap().to_vec1().unwrap(),
                each.flatten_all().unwrap().to_vec1().unwrap(),
            );
            assert!(g.iter().all(|v| v.is_finite()));
            let diff = g
                .iter()
                .zip(&e)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let scale = e.iter().map(|b| b.abs()).fold(0f32, f32::max);
            assert!(diff <= 1e-6 * scale, "t={t}: {diff} of {scale}");
        }
    }

    #[test]
    fn without_normalisation_weights_are_the_softmax() {
        let r = Routing::from_logits(&[1.0, 0.0], 2, 1, false);
        let p = 1f32.exp() / (1f32.exp() + 1.0);
        assert!((r.per_expert[0].1[0] - p).abs() < 1e-6);
        assert!(r.per_expert[1].0.is_empty());
    }
}
