//! The autoencoder: a small dense network n → 64 → 32 → 16 → 32 → 64 → n trained with Adam
//! to reproduce standardised feature rows; a row it reconstructs badly is unusual.
//!
//! Owns: the network (flat weight arrays, tanh hidden layers, linear output), seeded
//! initialisation and shuffling, minibatch training, the reconstruction error per row and
//! per feature (the explanation), and the 16-d latent code campaign clustering works on.
//! Never: copies the input matrix (rows are standardised on the fly); never panics on
//! constant columns (their scale is 1).

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;
use crate::rng::Rng;

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AeParams {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per gradient step.
    pub batch: usize,
    /// Step size of the optimiser.
    pub learning_rate: f64,
    /// Seed of the initial weights and the shuffles (same seed, same model).
    pub seed: u64,
}

impl Default for AeParams {
    fn default() -> Self {
        AeParams {
            epochs: 30,
            batch: 64,
            learning_rate: 1e-3,
            seed: 0,
        }
    }
}

/// Hidden widths between the input and output layers.
pub const HIDDEN: [usize; 5] = [64, 32, 16, 32, 64];
/// Index of the latent (bottleneck) layer among the hidden layers.
const LATENT: usize = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// `outputs × inputs`, row-major.
    w: Vec<f64>,
    b: Vec<f64>,
}

impl Layer {
    fn new(inputs: usize, outputs: usize, rng: &mut Rng) -> Layer {
        // Xavier/Glorot uniform.
        let limit = (6.0 / (inputs + outputs) as f64).sqrt();
        Layer {
            inputs,
            outputs,
            w: (0..inputs * outputs)
                .map(|_| (2.0 * rng.f64() - 1.0) * limit)
                .collect(),
            b: vec![0.0; outputs],
        }
    }

    fn forward(&self, x: &[f64], out: &mut [f64], tanh: bool) {
        for (o, (row, b)) in out
            .iter_mut()
            .zip(self.w.chunks_exact(self.inputs).zip(&self.b))
        {
            let z = row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + b;
            *o = if tanh { z.tanh() } else { z };
        }
    }
}

/// Adam state for one parameter vector.
#[derive(Debug, Clone, Default)]
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    fn step(&mut self, p: &mut [f64], g: &[f64], lr: f64, t: i32) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        if self.m.len() != p.len() {
            self.m = vec![0.0; p.len()];
            self.v = vec![0.0; p.len()];
        }
        let (c1, c2) = (1.0 - B1.powi(t), 1.0 - B2.powi(t));
        for i in 0..p.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g[i] * g[i];
            p[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + EPS);
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
/// Why an autoencoder could not be trained or used.
pub enum AeError {
    #[error("cannot train on an empty matrix")]
    /// No rows to train on.
    Empty,
    #[error("the model has {model} features, the data {data}")]
    /// The data has another number of features than the model.
    Columns {
        /// Features of the model.
        model: usize,
        /// Features of the data.
        data: usize,
    },
    #[error("training diverged (the loss is not finite)")]
    /// The loss became infinite or NaN.
    Diverged,
}

/// A trained autoencoder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Autoencoder {
    params: AeParams,
    cols: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
    layers: Vec<Layer>,
    /// Mean squared error per epoch (the last is the final training loss).
    pub losses: Vec<f64>,
}

/// Activations of every layer for one row (index 0 = the standardised input).
struct Pass {
    acts: Vec<Vec<f64>>,
}

impl Autoencoder {
    fn standardise(&self, row: &[f64], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = (row[j] - self.mean[j]) / self.scale[j];
        }
    }

    fn new_pass(&self) -> Pass {
        let mut acts = vec![vec![0.0; self.cols]];
        for l in &self.layers {
            acts.push(vec![0.0; l.outputs]);
        }
        Pass { acts }
    }

    /// Forward pass of `row` (raw units) into `p`.
    fn forward(&self, row: &[f64], p: &mut Pass) {
        let (first, rest) = p.acts.split_at_mut(1);
        self.standardise(row, &mut first[0]);
        let n = self.layers.len();
        let mut prev: &Vec<f64> = &first[0];
        for (i, (l, out)) in self.layers.iter().zip(rest.iter_mut()).enumerate() {
            l.forward(prev, out, i + 1 < n);
            prev = out;
        }
    }

    /// Trains on the rows of `m` (a clean baseline).
    pub fn fit(m: Matrix, params: AeParams) -> Result<Autoencoder, AeError> {
        if m.rows() == 0 {
            return Err(AeError::Empty);
        }
        let cols = m.cols();
        let (mut mean, mut scale) = (vec![0.0; cols], vec![0.0; cols]);
        for i in 0..m.rows() {
            for (j, &v) in m.row(i).iter().enumerate() {
                mean[j] += v;
            }
        }
        mean.iter_mut().for_each(|v| *v /= m.rows() as f64);
        for i in 0..m.rows() {
            for (j, &v) in m.row(i).iter().enumerate() {
                scale[j] += (v - mean[j]).powi(2);
            }
        }
        for s in &mut scale {
            let sd = (*s / m.rows() as f64).sqrt();
            *s = if sd > 1e-12 && sd.is_finite() {
                sd
            } else {
                1.0
            };
        }
        let mut rng = Rng::new(params.seed, 0xae);
        let mut widths = vec![cols];
        widths.extend_from_slice(&HIDDEN);
        widths.push(cols);
        let layers: Vec<Layer> = widths
            .windows(2)
            .map(|w| Layer::new(w[0], w[1], &mut rng))
            .collect();
        let mut ae = Autoencoder {
            params,
            cols,
            mean,
            scale,
            layers,
            losses: Vec::with_capacity(params.epochs),
        };
        let mut adam_w: Vec<Adam> = vec![Adam::default(); ae.layers.len()];
        let mut adam_b: Vec<Adam> = vec![Adam::default(); ae.layers.len()];
        let mut gw: Vec<Vec<f64>> = ae.layers.iter().map(|l| vec![0.0; l.w.len()]).collect();
        let mut gb: Vec<Vec<f64>> = ae.layers.iter().map(|l| vec![0.0; l.b.len()]).collect();
        let mut deltas: Vec<Vec<f64>> = ae.layers.iter().map(|l| vec![0.0; l.outputs]).collect();
        let mut order: Vec<usize> = (0..m.rows()).collect();
        let mut pass = ae.new_pass();
        let mut t = 0i32;
        let batch = params.batch.max(1);
        for _epoch in 0..params.epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let mut epoch_loss = 0.0;
            for chunk in order.chunks(batch) {
                gw.iter_mut().for_each(|g| g.fill(0.0));
                gb.iter_mut().for_each(|g| g.fill(0.0));
                for &r in chunk {
                    ae.forward(m.row(r), &mut pass);
                    let n = ae.layers.len();
                    // Output layer: d(MSE)/d(z) for a linear output.
                    let target = &pass.acts[0];
                    let out = &pass.acts[n];
                    for j in 0..cols {
                        let e = out[j] - target[j];
                        epoch_loss += e * e;
                        deltas[n - 1][j] = 2.0 * e / cols as f64;
                    }
                    for li in (0..n).rev() {
                        let l = &ae.layers[li];
                        let input = &pass.acts[li];
                        for o in 0..l.outputs {
                            let d = deltas[li][o];
                            gb[li][o] += d;
                            let row = &mut gw[li][o * l.inputs..(o + 1) * l.inputs];
                            for (g, x) in row.iter_mut().zip(input) {
                                *g += d * x;
                            }
                        }
                        if li > 0 {
                            // Back through the weights and the tanh of the layer below.
                            let (lower, upper) = deltas.split_at_mut(li);
                            let (up, down) = (&upper[0], &mut lower[li - 1]);
                            let a = &pass.acts[li];
                            for k in 0..l.inputs {
                                let mut s = 0.0;
                                for (o, &d) in up.iter().enumerate() {
                                    s += l.w[o * l.inputs + k] * d;
                                }
                                down[k] = s * (1.0 - a[k] * a[k]);
                            }
                        }
                    }
                }
                t += 1;
                let scale = 1.0 / chunk.len() as f64;
                for li in 0..ae.layers.len() {
                    gw[li].iter_mut().for_each(|g| *g *= scale);
                    gb[li].iter_mut().for_each(|g| *g *= scale);
                    adam_w[li].step(&mut ae.layers[li].w, &gw[li], params.learning_rate, t);
                    adam_b[li].step(&mut ae.layers[li].b, &gb[li], params.learning_rate, t);
                }
            }
            let loss = epoch_loss / (m.rows() * cols) as f64;
            if !loss.is_finite() {
                return Err(AeError::Diverged);
            }
            ae.losses.push(loss);
        }
        Ok(ae)
    }

    /// Features it takes.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn check(&self, m: &Matrix) -> Result<(), AeError> {
        if m.cols() != self.cols {
            return Err(AeError::Columns {
                model: self.cols,
                data: m.cols(),
            });
        }
        Ok(())
    }

    /// Squared reconstruction error of each feature of `row` (standardised units).
    pub fn feature_errors(&self, row: &[f64]) -> Vec<f64> {
        let mut p = self.new_pass();
        self.forward(row, &mut p);
        let n = self.layers.len();
        p.acts[n]
            .iter()
            .zip(&p.acts[0])
            .map(|(o, t)| (o - t) * (o - t))
            .collect()
    }

    /// Mean squared reconstruction error of every row.
    pub fn errors(&self, m: Matrix) -> Result<Vec<f64>, AeError> {
        self.check(&m)?;
        let mut p = self.new_pass();
        let n = self.layers.len();
        Ok((0..m.rows())
            .map(|i| {
                self.forward(m.row(i), &mut p);
                p.acts[n]
                    .iter()
                    .zip(&p.acts[0])
                    .map(|(o, t)| (o - t) * (o - t))
                    .sum::<f64>()
                    / self.cols as f64
            })
            .collect())
    }

    /// The 16-d latent code of every row, row-major.
    pub fn latent(&self, m: Matrix) -> Result<Vec<f64>, AeError> {
        self.check(&m)?;
        let mut p = self.new_pass();
        let mut out = Vec::with_capacity(m.rows() * HIDDEN[LATENT]);
        for i in 0..m.rows() {
            self.forward(m.row(i), &mut p);
            out.extend_from_slice(&p.acts[LATENT + 1]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;

    /// Rows on a 2-d plane embedded in 6 dimensions, plus a few off it.
    fn data(n: usize, outliers: usize) -> (Vec<f64>, Vec<bool>) {
        let mut rng = Rng::new(9, 9);
        let mut d = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let (u, v) = (rng.normal(), rng.normal());
            let mut row = [u, v, u + v, u - v, 2.0 * u, 0.5 * v + 3.0];
            let out = i < outliers;
            if out {
                // Same marginal ranges, broken correlations.
                row[2] = -(u + v);
                row[4] = -2.0 * u;
            }
            d.extend_from_slice(&row);
            y.push(out);
        }
        (d, y)
    }

    #[test]
    fn learns_the_structure_and_flags_rows_that_break_it() {
        let (train, _) = data(2000, 0);
        let m = Matrix::new(&train, 6).unwrap();
        let ae = Autoencoder::fit(
            m,
            AeParams {
                epochs: 40,
                seed: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            ae.losses.last().unwrap() < &(ae.losses[0] * 0.3),
            "loss did not fall: {:?}",
            ae.losses
        );
        let (test, y) = data(1000, 20);
        let t = Matrix::new(&test, 6).unwrap();
        let e = ae.errors(t).unwrap();
        let auc = roc_auc(&e, &y);
        assert!(auc > 0.95, "auc {auc}");
        // The explanation points at the features whose correlation was broken.
        let fe = ae.feature_errors(t.row(0));
        let top = (0..6).max_by(|&a, &b| fe[a].total_cmp(&fe[b])).unwrap();
        assert!(top == 2 || top == 4 || top == 0 || top == 1, "{fe:?}");
        assert_eq!(ae.latent(t).unwrap().len(), 1000 * 16);
    }

    #[test]
    fn reproducible_and_robust() {
        let (d, _) = data(300, 0);
        let m = Matrix::new(&d, 6).unwrap();
        let p = AeParams {
            epochs: 3,
            seed: 4,
            ..Default::default()
        };
        let a = Autoencoder::fit(m, p).unwrap();
        let b = Autoencoder::fit(m, p).unwrap();
        assert!(a.errors(m).unwrap() == b.errors(m).unwrap());
        let constant = vec![1.0; 60];
        let c = Matrix::new(&constant, 6).unwrap();
        let ae = Autoencoder::fit(c, p).unwrap();
        assert!(ae.errors(c).unwrap().iter().all(|v| v.is_finite()));
        assert!(matches!(
            ae.errors(Matrix::new(&[1.0, 2.0], 2).unwrap()),
            Err(AeError::Columns { .. })
        ));
        let back: Autoencoder = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert!(back.errors(m).unwrap() == a.errors(m).unwrap());
    }
}
