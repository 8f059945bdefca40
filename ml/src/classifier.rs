//! The supervised classifier: what analysts confirmed, learned.
//!
//! Owns: a random forest of smartcore decision trees (bootstrap rows and a random subspace of
//! the features per tree, so the votes give a probability), trained on labelled clients —
//! analyst marks (false positive = 0, confirmed bot = 1) and confirmed detections — when there
//! are enough of each class; its out-of-bag ROC AUC; persistence with the feature schema.
//! Never: trains on too few labels (it refuses with [`ClassifierError::TooFewLabels`]); never
//! replaces the unsupervised models — the scorer uses it as one more, explained, signal.

use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};

use crate::matrix::Matrix;
use crate::rng::Rng;

#[derive(Debug, thiserror::Error)]
/// Why the classifier could not be trained.
pub enum ClassifierError {
    #[error("too few labels to train the classifier: {positives} bots and {negatives} non-bots (need {min} of each)")]
    /// Analysts have not labelled enough clients of each kind.
    TooFewLabels {
        /// Clients labelled bots.
        positives: usize,
        /// Clients labelled not bots.
        negatives: usize,
        /// Fewest of each needed.
        min: usize,
    },
    #[error("labels ({labels}) and rows ({rows}) differ")]
    /// Labels and rows differ in number.
    Shape {
        /// Labels given.
        labels: usize,
        /// Rows given.
        rows: usize,
    },
    #[error("classifier: {0}")]
    /// The forest could not be fitted (its message).
    Fit(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
/// How to train the classifier (a random forest).
pub struct ClassifierParams {
    /// Trees in the forest.
    pub trees: usize,
    /// Features per tree (default: √n, at least 2).
    pub features_per_tree: Option<usize>,
    /// Deepest split of a tree.
    pub max_depth: u16,
    /// Fewest labels of each kind to train.
    pub min_per_class: usize,
    /// Seed of the bootstrap samples (same seed, same classifier).
    pub seed: u64,
}

impl Default for ClassifierParams {
    fn default() -> Self {
        ClassifierParams {
            trees: 100,
            features_per_tree: None,
            max_depth: 8,
            min_per_class: 10,
            seed: 1,
        }
    }
}

type Tree = DecisionTreeClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>;

#[derive(Serialize, Deserialize)]
struct Member {
    columns: Vec<usize>,
    tree: Tree,
}

/// A trained classifier.
#[derive(Serialize, Deserialize)]
pub struct Classifier {
    /// The features it was trained on, in order.
    pub features: Vec<String>,
    /// Bot labels it learnt from.
    pub positives: usize,
    /// Non-bot labels it learnt from.
    pub negatives: usize,
    /// Out-of-bag ROC AUC (each row scored by the trees that did not see it).
    pub oob_auc: f64,
    members: Vec<Member>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("trees", &self.members.len())
            .field("positives", &self.positives)
            .field("negatives", &self.negatives)
            .field("oob_auc", &self.oob_auc)
            .finish()
    }
}

fn sub_matrix(
    x: &Matrix,
    rows: &[usize],
    cols: &[usize],
) -> Result<DenseMatrix<f64>, ClassifierError> {
    let data: Vec<Vec<f64>> = rows
        .iter()
        .map(|&r| {
            let row = x.row(r);
            cols.iter().map(|&c| row[c]).collect()
        })
        .collect();
    DenseMatrix::from_2d_vec(&data).map_err(|e| ClassifierError::Fit(e.to_string()))
}

impl Classifier {
    /// Trains on `x` with `bot[i]` the label of row `i`.
    pub fn train(
        x: Matrix,
        bot: &[bool],
        features: &[String],
        p: &ClassifierParams,
    ) -> Result<Classifier, ClassifierError> {
        if bot.len() != x.rows() {
            return Err(ClassifierError::Shape {
                labels: bot.len(),
                rows: x.rows(),
            });
        }
        let positives = bot.iter().filter(|b| **b).count();
        let negatives = bot.len() - positives;
        if positives < p.min_per_class || negatives < p.min_per_class {
            return Err(ClassifierError::TooFewLabels {
                positives,
                negatives,
                min: p.min_per_class,
            });
        }
        let n = x.rows();
        let cols = x.cols();
        let k = p
            .features_per_tree
            .unwrap_or_else(|| ((cols as f64).sqrt().round() as usize).max(2))
            .clamp(1, cols);
        let mut rng = Rng::new(p.seed, 77);
        let mut members = Vec::with_capacity(p.trees);
        let mut oob_votes = vec![(0.0f64, 0u32); n];
        for t in 0..p.trees {
            // Bootstrap rows stratified by class, so every tree sees both classes.
            let (pos, neg): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| bot[i]);
            let mut rows: Vec<usize> = (0..pos.len()).map(|_| pos[rng.below(pos.len())]).collect();
            rows.extend((0..neg.len()).map(|_| neg[rng.below(neg.len())]));
            let mut columns: Vec<usize> = (0..cols).collect();
            for i in 0..k {
                let j = i + rng.below(cols - i);
                columns.swap(i, j);
            }
            columns.truncate(k);
            columns.sort_unstable();
            let xm = sub_matrix(&x, &rows, &columns)?;
            let y: Vec<u32> = rows.iter().map(|&r| u32::from(bot[r])).collect();
            let params = DecisionTreeClassifierParameters {
                max_depth: Some(p.max_depth),
                min_samples_leaf: 3,
                min_samples_split: 6,
                seed: Some(p.seed.wrapping_add(t as u64)),
                ..Default::default()
            };
            let tree =
                Tree::fit(&xm, &y, params).map_err(|e| ClassifierError::Fit(e.to_string()))?;
            let mut seen = vec![false; n];
            for &r in &rows {
                seen[r] = true;
            }
            let oob: Vec<usize> = (0..n).filter(|&i| !seen[i]).collect();
            if !oob.is_empty() {
                let xo = sub_matrix(&x, &oob, &columns)?;
                let pred = tree
                    .predict(&xo)
                    .map_err(|e| ClassifierError::Fit(e.to_string()))?;
                for (i, v) in oob.iter().zip(pred) {
                    oob_votes[*i].0 += f64::from(v);
                    oob_votes[*i].1 += 1;
                }
            }
            members.push(Member { columns, tree });
        }
        let (scores, labels): (Vec<f64>, Vec<bool>) = oob_votes
            .iter()
            .zip(bot)
            .filter(|((_, c), _)| *c > 0)
            .map(|((s, c), b)| (s / f64::from(*c), *b))
            .unzip();
        let oob_auc = crate::metrics::roc_auc(&scores, &labels);
        Ok(Classifier {
            features: features.to_vec(),
            positives,
            negatives,
            oob_auc,
            members,
        })
    }

    /// Probability that each row of `x` is a bot: the fraction of trees voting bot.
    pub fn proba(&self, x: Matrix) -> Result<Vec<f64>, ClassifierError> {
        let rows: Vec<usize> = (0..x.rows()).collect();
        let mut votes = vec![0.0; x.rows()];
        if rows.is_empty() {
            return Ok(votes);
        }
        for m in &self.members {
            let xm = sub_matrix(&x, &rows, &m.columns)?;
            let pred = m
                .tree
                .predict(&xm)
                .map_err(|e| ClassifierError::Fit(e.to_string()))?;
            for (v, p) in votes.iter_mut().zip(pred) {
                *v += f64::from(p);
            }
        }
        let n = self.members.len().max(1) as f64;
        Ok(votes.into_iter().map(|v| v / n).collect())
    }

    /// The classifier as JSON (saved next to the model).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// A classifier saved by [`Classifier::to_json`].
    pub fn from_json(s: &str) -> Result<Classifier, serde_json::Error> {
        serde_json::from_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two overlapping clouds: bots have high values of feature 0 and 2.
    fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = Rng::new(seed, 1);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let bot = i % 3 == 0;
            let shift = if bot { 1.5 } else { 0.0 };
            x.extend([
                rng.normal() + shift,
                rng.normal(),
                rng.normal() + shift,
                rng.normal(),
            ]);
            y.push(bot);
        }
        (x, y)
    }

    #[test]
    fn learns_labels_and_generalises() {
        let names: Vec<String> = (0..4).map(|i| format!("f{i}")).collect();
        let (x, y) = data(600, 1);
        let c = Classifier::train(
            Matrix::new(&x, 4).unwrap(),
            &y,
            &names,
            &ClassifierParams::default(),
        )
        .unwrap();
        assert!(c.oob_auc > 0.85, "oob auc {}", c.oob_auc);
        let (xt, yt) = data(300, 2);
        let p = c.proba(Matrix::new(&xt, 4).unwrap()).unwrap();
        let auc = crate::metrics::roc_auc(&p, &yt);
        assert!(auc > 0.85, "held-out auc {auc}");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        let back = Classifier::from_json(&c.to_json().unwrap()).unwrap();
        assert_eq!(back.proba(Matrix::new(&xt, 4).unwrap()).unwrap(), p);
    }

    #[test]
    fn refuses_too_few_labels() {
        let (x, mut y) = data(30, 3);
        y.iter_mut().for_each(|b| *b = false);
        y[0] = true;
        let e = Classifier::train(
            Matrix::new(&x, 4).unwrap(),
            &y,
            &[],
            &ClassifierParams::default(),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ClassifierError::TooFewLabels { positives: 1, .. }
        ));
    }
}
