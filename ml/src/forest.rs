//! Extended isolation forest (Hariri et al.), flat arrays, seeded per tree.
//!
//! Owns: fitting on a borrowed [`Matrix`] (sampling without replacement, one RNG stream per
//! tree so the result does not depend on the thread count), scoring in parallel, and the
//! attribution of a score to the features whose splits isolated the row.
//! `features_per_split` runs from 1 (standard isolation forest: axis-parallel cuts) to the
//! number of columns (fully extended: random hyperplanes). Hyperplane coefficients are drawn
//! uniformly in [−1, 1] on the node's standardised features and folded into raw-unit weights,
//! so scoring reads the raw rows; the cut falls uniformly between the node's extreme
//! projections, so every split separates something.
//! Never: copies the input matrix; never panics on degenerate data (constant columns, one
//! row, duplicates): such nodes become leaves.

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;
use crate::rng::Rng;

/// How to grow the forest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Trees in the forest.
    pub trees: usize,
    /// Rows sampled (without replacement) per tree: ψ.
    pub sample_size: usize,
    /// Features combined in each split: 1 = standard IF … columns = fully extended.
    pub features_per_split: usize,
    /// Seed of the samples and splits (same seed, same forest).
    pub seed: u64,
    /// Threads for fitting and scoring; 0 = all available cores.
    pub threads: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 200,
            sample_size: 256,
            features_per_split: 1,
            seed: 0,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Why a forest could not be fitted or used.
pub enum ForestError {
    #[error("cannot fit on an empty matrix")]
    /// No rows to fit.
    Empty,
    #[error("{0} must be at least 1")]
    /// A parameter that must be at least 1 (named).
    Zero(&'static str),
    #[error("the model has {model} features, the data {data}")]
    /// The data has another number of features than the forest.
    Columns {
        /// Features of the forest.
        model: usize,
        /// Features of the data.
        data: usize,
    },
}

/// One node. A split compares the row with `value`: with one feature per split, the raw value
/// of feature `a` (axis-parallel cut, no arithmetic); with more, the weighted sum of the `k`
/// terms starting at `a`. A leaf (`left == LEAF`) holds in `value` the path length it adds:
/// depth + c(size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    a: u32,
    left: u32,
    right: u32,
    value: f64,
}

/// One term of a hyperplane: feature and weight (in raw units), stored together so a split's
/// terms share a cache line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Term {
    feat: u32,
    w: f64,
}

const LEAF: u32 = u32::MAX;

/// Rows scored together, tree by tree, so each tree stays in cache across the block.
const BLOCK: usize = 64;

/// A fitted forest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forest {
    params: ForestParams,
    cols: usize,
    /// Features per split actually used (≤ cols).
    k: usize,
    /// c(ψ): the average path length that normalises scores.
    c_norm: f64,
    /// Mean per feature: the origin explanations measure from.
    center: Vec<f64>,
    nodes: Vec<Node>,
    roots: Vec<u32>,
    terms: Vec<Term>,
}

/// Harmonic number H(n): summed exactly up to 4096 terms (the approximation ln n + γ is far
/// off for the small leaves isolation trees end in), then its asymptotic expansion.
fn harmonic(n: usize) -> f64 {
    if n <= 4096 {
        (1..=n).rev().map(|i| 1.0 / i as f64).sum()
    } else {
        let x = n as f64;
        x.ln() + 0.577_215_664_901_532_9 + 1.0 / (2.0 * x) - 1.0 / (12.0 * x * x)
    }
}

/// Average path length of an unsuccessful search in a binary search tree of `n` points.
pub fn c(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        _ => 2.0 * harmonic(n - 1) - 2.0 * (n - 1) as f64 / n as f64,
    }
}

fn threads(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// One tree while it grows (local indices), and the rows it was grown on.
#[derive(Default)]
struct TreeBuf {
    nodes: Vec<Node>,
    terms: Vec<Term>,
    sample: Vec<u32>,
}

struct Grower<'m> {
    m: Matrix<'m>,
    k: usize,
    max_depth: usize,
    rng: Rng,
    chosen: Vec<usize>,
    all: Vec<usize>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    w: Vec<f64>,
    sd: Vec<f64>,
    proj: Vec<f64>,
}

impl Grower<'_> {
    fn leaf(buf: &mut TreeBuf, depth: usize, size: usize) -> u32 {
        buf.nodes.push(Node {
            a: 0,
            left: LEAF,
            right: LEAF,
            value: depth as f64 + c(size),
        });
        (buf.nodes.len() - 1) as u32
    }

    fn grow(&mut self, idx: &mut [u32], depth: usize, buf: &mut TreeBuf) -> u32 {
        let n = idx.len();
        if n <= 1 || depth >= self.max_depth {
            return Self::leaf(buf, depth, n);
        }
        for _attempt in 0..8 {
            // k distinct features (partial Fisher–Yates over the column list).
            self.chosen.clear();
            let cols = self.all.len();
            for i in 0..self.k {
                let j = i + self.rng.below(cols - i);
                self.all.swap(i, j);
                self.chosen.push(self.all[i]);
            }
            // Bounding box of the node on those features.
            self.lo.clear();
            self.hi.clear();
            self.sd.clear();
            for &f in &self.chosen {
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                let (mut sum, mut sq) = (0.0, 0.0);
                for &r in idx.iter() {
                    let v = self.m.at(r as usize, f);
                    lo = lo.min(v);
                    hi = hi.max(v);
                    sum += v;
                    sq += v * v;
                }
                self.lo.push(lo);
                self.hi.push(hi);
                if self.k > 1 {
                    let mean = sum / n as f64;
                    let var = (sq / n as f64 - mean * mean).max(0.0);
                    self.sd.push(var.sqrt());
                }
            }
            if self.lo.iter().zip(&self.hi).all(|(l, h)| l >= h) {
                continue;
            }
            // One feature: an axis-parallel cut at a point drawn uniformly in its range.
            // More: a normal drawn in standardised units (folded into raw-unit weights).
            let threshold;
            let mut left = 0;
            if self.k == 1 {
                let f = self.chosen[0];
                threshold = self.lo[0] + self.rng.f64() * (self.hi[0] - self.lo[0]);
                for i in 0..n {
                    if self.m.at(idx[i] as usize, f) <= threshold {
                        idx.swap(i, left);
                        left += 1;
                    }
                }
            } else {
                self.w.clear();
                for i in 0..self.k {
                    // Uniform coefficients on the node's standardised features.
                    let sd = self.sd[i];
                    let w = if self.hi[i] > self.lo[i] && sd > 0.0 {
                        (2.0 * self.rng.f64() - 1.0) / sd
                    } else {
                        0.0
                    };
                    self.w.push(w);
                }
                // Project the node's rows; cut uniformly between the extreme projections
                // (a point drawn in the bounding box often cuts off nothing).
                self.proj.clear();
                let (mut pmin, mut pmax) = (f64::INFINITY, f64::NEG_INFINITY);
                for &r in idx.iter() {
                    let dot: f64 = self
                        .chosen
                        .iter()
                        .zip(&self.w)
                        .map(|(&f, &w)| w * self.m.at(r as usize, f))
                        .sum();
                    pmin = pmin.min(dot);
                    pmax = pmax.max(dot);
                    self.proj.push(dot);
                }
                if pmax <= pmin {
                    continue;
                }
                threshold = pmin + self.rng.f64() * (pmax - pmin);
                for i in 0..n {
                    if self.proj[i] <= threshold {
                        idx.swap(i, left);
                        self.proj.swap(i, left);
                        left += 1;
                    }
                }
            }
            if left == 0 || left == n {
                continue;
            }
            let a = if self.k == 1 {
                self.chosen[0] as u32
            } else {
                let at = buf.terms.len() as u32;
                buf.terms.extend(
                    self.chosen
                        .iter()
                        .zip(&self.w)
                        .map(|(&f, &w)| Term { feat: f as u32, w }),
                );
                at
            };
            buf.nodes.push(Node {
                a,
                left: 0,
                right: 0,
                value: threshold,
            });
            let me = buf.nodes.len() - 1;
            let (l, r) = idx.split_at_mut(left);
            let li = self.grow(l, depth + 1, buf);
            let ri = self.grow(r, depth + 1, buf);
            buf.nodes[me].left = li;
            buf.nodes[me].right = ri;
            return me as u32;
        }
        Self::leaf(buf, depth, n)
    }
}

/// ψ distinct row indices out of `rows`.
fn sample(rng: &mut Rng, rows: usize, psi: usize) -> Vec<u32> {
    if psi * 2 >= rows {
        let mut all: Vec<u32> = (0..rows as u32).collect();
        for i in 0..psi {
            let j = i + rng.below(rows - i);
            all.swap(i, j);
        }
        all.truncate(psi);
        return all;
    }
    let mut seen = std::collections::HashSet::with_capacity(psi * 2);
    let mut out = Vec::with_capacity(psi);
    while out.len() < psi {
        let r = rng.below(rows) as u32;
        if seen.insert(r) {
            out.push(r);
        }
    }
    out
}

/// Mean of each column.
fn column_means(m: &Matrix) -> Vec<f64> {
    let mut mean = vec![0.0; m.cols()];
    for i in 0..m.rows() {
        for (acc, &v) in mean.iter_mut().zip(m.row(i)) {
            *acc += v;
        }
    }
    let n = m.rows().max(1) as f64;
    mean.iter_mut().for_each(|v| *v /= n);
    mean
}

impl Forest {
    /// Grows the forest on `m`.
    pub fn fit(m: Matrix, params: ForestParams) -> Result<Forest, ForestError> {
        Self::fit_with_samples(m, params).map(|(f, _)| f)
    }

    /// Grows the forest and scores every training row out of bag: with only the trees that
    /// did not sample it (in-sample scores are optimistic: a tree isolates its own rows late).
    /// A row every tree sampled gets its in-sample score.
    pub fn fit_oob(m: Matrix, params: ForestParams) -> Result<(Forest, Vec<f64>), ForestError> {
        let (f, samples) = Self::fit_with_samples(m, params)?;
        let mut total = vec![0.0; m.rows()];
        let mut count = vec![0u32; m.rows()];
        let mut seen = vec![false; m.rows()];
        for (t, sample) in samples.iter().enumerate() {
            seen.iter_mut().for_each(|s| *s = false);
            for &r in sample {
                seen[r as usize] = true;
            }
            let root = f.roots[t];
            for i in (0..m.rows()).filter(|&i| !seen[i]) {
                total[i] += f.walk(root, m.row(i), |_| ());
                count[i] += 1;
            }
        }
        let scores = (0..m.rows())
            .map(|i| {
                if count[i] == 0 {
                    f.score_row(m.row(i))
                } else {
                    let mean = total[i] / f64::from(count[i]);
                    if f.c_norm > 0.0 {
                        (-mean / f.c_norm).exp2()
                    } else {
                        1.0
                    }
                }
            })
            .collect();
        Ok((f, scores))
    }

    fn fit_with_samples(
        m: Matrix,
        params: ForestParams,
    ) -> Result<(Forest, Vec<Vec<u32>>), ForestError> {
        if m.rows() == 0 {
            return Err(ForestError::Empty);
        }
        for (v, name) in [
            (params.trees, "trees"),
            (params.sample_size, "sample_size"),
            (params.features_per_split, "features_per_split"),
        ] {
            if v == 0 {
                return Err(ForestError::Zero(name));
            }
        }
        let psi = params.sample_size.min(m.rows());
        let k = params.features_per_split.min(m.cols());
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let center = column_means(&m);
        let n_threads = threads(params.threads).min(params.trees);
        // Trees are grown in parallel; tree t always uses RNG stream t.
        let mut bufs: Vec<Option<TreeBuf>> = (0..params.trees).map(|_| None).collect();
        std::thread::scope(|s| {
            let chunk = params.trees.div_ceil(n_threads);
            for (c, slot) in bufs.chunks_mut(chunk).enumerate() {
                s.spawn(move || {
                    for (i, out) in slot.iter_mut().enumerate() {
                        let t = (c * chunk + i) as u64;
                        let mut rng = Rng::new(params.seed, t);
                        let mut idx = sample(&mut rng, m.rows(), psi);
                        let mut g = Grower {
                            m,
                            k,
                            max_depth,
                            rng,
                            chosen: Vec::with_capacity(k),
                            all: (0..m.cols()).collect(),
                            lo: Vec::with_capacity(k),
                            hi: Vec::with_capacity(k),
                            w: Vec::with_capacity(k),
                            sd: Vec::with_capacity(k),
                            proj: Vec::with_capacity(psi),
                        };
                        let mut buf = TreeBuf::default();
                        g.grow(&mut idx, 0, &mut buf);
                        buf.sample = idx;
                        *out = Some(buf);
                    }
                });
            }
        });
        let mut f = Forest {
            params,
            cols: m.cols(),
            k,
            c_norm: c(psi),
            center,
            nodes: Vec::new(),
            roots: Vec::with_capacity(params.trees),
            terms: Vec::new(),
        };
        let mut samples = Vec::with_capacity(params.trees);
        for buf in bufs.into_iter().flatten() {
            samples.push(buf.sample);
            let node_base = f.nodes.len() as u32;
            let term_base = f.terms.len() as u32;
            f.roots.push(node_base);
            f.nodes.extend(buf.nodes.iter().map(|n| {
                if n.left == LEAF {
                    *n
                } else {
                    Node {
                        a: if k == 1 { n.a } else { n.a + term_base },
                        left: n.left + node_base,
                        right: n.right + node_base,
                        value: n.value,
                    }
                }
            }));
            f.terms.extend_from_slice(&buf.terms);
        }
        Ok((f, samples))
    }

    /// How it was grown.
    pub fn params(&self) -> &ForestParams {
        &self.params
    }

    /// Features it takes.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Nodes in all trees (a size measure).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The child of split `n` that `row` goes to.
    #[inline(always)]
    fn step(&self, n: &Node, row: &[f64]) -> u32 {
        let v = if self.k == 1 {
            row[n.a as usize]
        } else {
            let at = n.a as usize;
            self.terms[at..at + self.k]
                .iter()
                .map(|t| t.w * row[t.feat as usize])
                .sum()
        };
        if v <= n.value {
            n.left
        } else {
            n.right
        }
    }

    /// Path length of `row` in the tree rooted at `root`; `visit` sees every split passed.
    #[inline(always)]
    fn walk(&self, root: u32, row: &[f64], mut visit: impl FnMut(&Node)) -> f64 {
        let mut n = &self.nodes[root as usize];
        while n.left != LEAF {
            visit(n);
            n = &self.nodes[self.step(n, row) as usize];
        }
        n.value
    }

    fn normalise(&self, total_depth: f64) -> f64 {
        let mean = total_depth / self.roots.len() as f64;
        if self.c_norm > 0.0 {
            (-mean / self.c_norm).exp2()
        } else {
            1.0
        }
    }

    /// The anomaly score of one row: 2^(−E[h]/c(ψ)), in (0, 1]; higher is more anomalous.
    pub fn score_row(&self, row: &[f64]) -> f64 {
        let total: f64 = self.roots.iter().map(|&r| self.walk(r, row, |_| ())).sum();
        self.normalise(total)
    }

    /// Scores `m` into `out`, blocks of rows tree by tree (each tree stays in cache).
    fn score_into(&self, m: Matrix, out: &mut [f64]) {
        let mut acc = [0.0f64; BLOCK];
        let mut start = 0;
        while start < m.rows() {
            let end = (start + BLOCK).min(m.rows());
            let acc = &mut acc[..end - start];
            acc.fill(0.0);
            for &root in &self.roots {
                for (i, a) in acc.iter_mut().enumerate() {
                    *a += self.walk(root, m.row(start + i), |_| ());
                }
            }
            for (o, &a) in out[start..end].iter_mut().zip(acc.iter()) {
                *o = self.normalise(a);
            }
            start = end;
        }
    }

    /// Scores every row of `m` in parallel (`threads`: 0 = the fit's setting).
    pub fn score(&self, m: Matrix, threads_wanted: usize) -> Result<Vec<f64>, ForestError> {
        if m.cols() != self.cols {
            return Err(ForestError::Columns {
                model: self.cols,
                data: m.cols(),
            });
        }
        let mut out = vec![0.0; m.rows()];
        let n = threads(if threads_wanted > 0 {
            threads_wanted
        } else {
            self.params.threads
        })
        .min(m.rows().div_ceil(BLOCK).max(1));
        if n <= 1 {
            self.score_into(m, &mut out);
            return Ok(out);
        }
        let chunk = m.rows().div_ceil(n).max(1);
        std::thread::scope(|s| {
            for (c, slot) in out.chunks_mut(chunk).enumerate() {
                let part = m.slice_rows(c * chunk, c * chunk + slot.len());
                s.spawn(move || self.score_into(part, slot));
            }
        });
        Ok(out)
    }

    /// How much each feature contributed to isolating `row`: for every split on its path, each
    /// feature's share of the row's offset along the split's normal (|wⱼ·(xⱼ − meanⱼ)|; the
    /// whole split with one feature per split), weighted by 1/h of that tree (short paths
    /// isolate); normalised to sum 1.
    pub fn explain_row(&self, row: &[f64]) -> Vec<f64> {
        let mut contrib = vec![0.0; self.cols];
        let mut path: Vec<u32> = Vec::with_capacity(16);
        for &r in &self.roots {
            path.clear();
            let h = self.walk(r, row, |n| path.push(n.a));
            let w_tree = 1.0 / h.max(1.0);
            for &a in &path {
                if self.k == 1 {
                    contrib[a as usize] += w_tree;
                    continue;
                }
                let terms = &self.terms[a as usize..a as usize + self.k];
                let part =
                    |t: &Term| (t.w * (row[t.feat as usize] - self.center[t.feat as usize])).abs();
                let total: f64 = terms.iter().map(part).sum();
                if total <= 0.0 {
                    continue;
                }
                for t in terms {
                    contrib[t.feat as usize] += w_tree * part(t) / total;
                }
            }
        }
        let sum: f64 = contrib.iter().sum();
        if sum > 0.0 {
            contrib.iter_mut().for_each(|v| *v /= sum);
        }
        contrib
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;

    /// Gaussian blob with a few far-out rows (labelled 1).
    fn data(n: usize, cols: usize, outliers: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = Rng::new(seed, 99);
        let mut d = Vec::with_capacity(n * cols);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let out = i < outliers;
            for j in 0..cols {
                let v = rng.normal() * (1.0 + j as f64);
                d.push(if out { v + 6.0 * (1.0 + j as f64) } else { v });
            }
            y.push(out);
        }
        (d, y)
    }

    #[test]
    fn path_length_normaliser() {
        assert_eq!(c(1), 0.0);
        assert_eq!(c(2), 1.0);
        assert!((c(3) - 5.0 / 3.0).abs() < 1e-12, "{}", c(3));
        assert!((c(256) - 10.2448).abs() < 1e-2, "{}", c(256));
        assert!((c(5000) - (2.0 * harmonic(4999) - 2.0 * 4999.0 / 5000.0)).abs() < 1e-9);
    }

    #[test]
    fn outliers_score_higher_for_every_extension_level() {
        let (d, y) = data(3000, 4, 30, 1);
        let m = Matrix::new(&d, 4).unwrap();
        for k in 1..=4 {
            let f = Forest::fit(
                m,
                ForestParams {
                    trees: 100,
                    features_per_split: k,
                    seed: 3,
                    ..Default::default()
                },
            )
            .unwrap();
            let s = f.score(m, 0).unwrap();
            let auc = roc_auc(&s, &y);
            assert!(auc > 0.99, "k={k} auc={auc}");
            assert!(s.iter().all(|v| *v > 0.0 && *v <= 1.0));
        }
    }

    #[test]
    fn same_seed_same_forest_whatever_the_thread_count() {
        let (d, _) = data(500, 3, 5, 2);
        let m = Matrix::new(&d, 3).unwrap();
        let p = ForestParams {
            trees: 37,
            features_per_split: 2,
            seed: 11,
            ..Default::default()
        };
        let a = Forest::fit(m, ForestParams { threads: 1, ..p }).unwrap();
        let b = Forest::fit(m, ForestParams { threads: 4, ..p }).unwrap();
        assert!(a.nodes == b.nodes, "trees differ with the thread count");
        assert!(a.score(m, 1).unwrap() == b.score(m, 3).unwrap());
        let c = Forest::fit(m, ForestParams { seed: 12, ..p }).unwrap();
        assert!(a.nodes != c.nodes);
        // A model survives serialisation.
        let back: Forest = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert!(
            back.score(m, 2).unwrap() == a.score(m, 2).unwrap(),
            "scores change after a JSON round trip"
        );
    }

    #[test]
    fn out_of_bag_scores_are_not_optimistic() {
        let (d, _) = data(400, 3, 0, 8);
        let m = Matrix::new(&d, 3).unwrap();
        let p = ForestParams {
            sample_size: 100,
            seed: 5,
            ..Default::default()
        };
        let (f, oob) = Forest::fit_oob(m, p).unwrap();
        let inb = f.score(m, 1).unwrap();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&oob) > mean(&inb),
            "oob {} in-bag {}",
            mean(&oob),
            mean(&inb)
        );
        // Fresh rows from the same distribution score like the out-of-bag ones.
        let (fresh, _) = data(400, 3, 0, 9);
        let fs = f.score(Matrix::new(&fresh, 3).unwrap(), 1).unwrap();
        assert!((mean(&fs) - mean(&oob)).abs() < (mean(&fs) - mean(&inb)).abs());
    }

    #[test]
    fn degenerate_data_and_bad_parameters() {
        let d = vec![5.0; 40];
        let m = Matrix::new(&d, 4).unwrap();
        let f = Forest::fit(m, ForestParams::default()).unwrap();
        let s = f.score(m, 0).unwrap();
        assert!(s.windows(2).all(|w| w[0] == w[1]));
        let one = [1.0, 2.0];
        let f = Forest::fit(Matrix::new(&one, 2).unwrap(), ForestParams::default()).unwrap();
        assert_eq!(
            f.score(Matrix::new(&one, 2).unwrap(), 0).unwrap(),
            vec![1.0]
        );
        assert_eq!(
            Forest::fit(
                m,
                ForestParams {
                    trees: 0,
                    ..Default::default()
                }
            )
            .unwrap_err(),
            ForestError::Zero("trees")
        );
        assert!(matches!(
            f.score(m, 0),
            Err(ForestError::Columns { model: 2, data: 4 })
        ));
    }

    #[test]
    fn explanations_point_at_the_feature_that_differs() {
        // Only feature 2 separates the outliers.
        let mut rng = Rng::new(5, 5);
        let mut d = Vec::new();
        for i in 0..2000 {
            for j in 0..4 {
                let v = rng.normal();
                d.push(if i == 0 && j == 2 { 12.0 } else { v });
            }
        }
        let m = Matrix::new(&d, 4).unwrap();
        for k in [1, 4] {
            let f = Forest::fit(
                m,
                ForestParams {
                    features_per_split: k,
                    seed: 1,
                    ..Default::default()
                },
            )
            .unwrap();
            let e = f.explain_row(m.row(0));
            let top = (0..4).max_by(|&a, &b| e[a].total_cmp(&e[b])).unwrap();
            assert_eq!(top, 2, "k={k} {e:?}");
            assert!((e.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }
}
