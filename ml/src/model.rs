//! The scoring model: forest and autoencoder trained together on a clean baseline, their
//! outputs mixed in rank space, saved with the feature schema they were trained on.
//!
//! Owns: the baseline distributions that turn a raw forest score or reconstruction error into
//! a rank (the share of baseline rows scoring lower — stable from one scoring window to the
//! next, unlike ranks within a window), the `ae_weight` mix (a measurement found rank mixing
//! raised AUC where min-max mixing did not), versioned persistence, and the schema check.
//! Never: scores rows whose columns differ from the schema; never fails scoring because the
//! autoencoder is missing or broken (the forest alone scores, and that is reported).

use serde::{Deserialize, Serialize};

use crate::autoencoder::{AeParams, Autoencoder};
use crate::forest::{Forest, ForestParams};
use crate::matrix::Matrix;

/// Format version of saved models.
pub const MODEL_VERSION: u32 = 1;

/// The empirical distribution of a score on the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cdf {
    sorted: Vec<f64>,
}

impl Cdf {
    /// From baseline scores (at most `keep` of them, evenly spaced quantiles).
    pub fn new(mut v: Vec<f64>, keep: usize) -> Cdf {
        v.retain(|x| x.is_finite());
        v.sort_unstable_by(f64::total_cmp);
        if v.len() > keep && keep > 1 {
            let n = v.len();
            v = (0..keep).map(|i| v[i * (n - 1) / (keep - 1)]).collect();
        }
        Cdf { sorted: v }
    }

    /// Where `x` falls in the baseline, in (0, 1): the k-th smallest of n baseline scores
    /// sits at k/(n+1) (ties share their mid rank). Past the largest the rank approaches 1
    /// along an exponential tail fitted to the top tenth of the baseline, so a score just
    /// above the baseline's maximum is not "beyond everything": with a small baseline (40
    /// clients) one in 40 ordinary clients lands there by chance alone.
    pub fn rank(&self, x: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.5;
        }
        let step = 1.0 / (n + 1) as f64;
        let hi = self.sorted[n - 1];
        if x > hi {
            return 1.0 - step * (-(x - hi) / self.tail_scale()).exp();
        }
        if x < self.sorted[0] {
            return step / 2.0;
        }
        let below = self.sorted.partition_point(|&v| v < x);
        let not_above = self.sorted.partition_point(|&v| v <= x);
        (below + not_above) as f64 / 2.0 * step + step / 2.0
    }

    /// Scale of the exponential upper tail: the mean excess of the top tenth (at least two
    /// points) over the score just below them.
    fn tail_scale(&self) -> f64 {
        let n = self.sorted.len();
        if n < 2 {
            return f64::MIN_POSITIVE;
        }
        let k = (n / 10).max(2).min(n - 1);
        let u = self.sorted[n - 1 - k];
        let excess = self.sorted[n - k..].iter().map(|v| v - u).sum::<f64>() / k as f64;
        if excess > 0.0 {
            excess
        } else {
            f64::MIN_POSITIVE
        }
    }
}

/// Per column of `m`, the share of its rows whose value is above 0 (empty for no rows).
pub fn presence(m: Matrix) -> Vec<f64> {
    if m.rows() == 0 {
        return Vec::new();
    }
    (0..m.cols())
        .map(|j| {
            let shown = (0..m.rows()).filter(|&i| m.row(i)[j] > 0.0).count();
            shown as f64 / m.rows() as f64
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
/// Why a model could not be used or read.
pub enum ModelError {
    #[error("the model was trained on features [{model}], the data has [{data}]")]
    /// The model and the data have different features (both lists, comma-separated).
    Schema {
        /// The model's features.
        model: String,
        /// The data's features.
        data: String,
    },
    #[error("model format {0} is not {MODEL_VERSION}: retrain with `ja4-sidecar train`")]
    /// A model saved in an older format.
    Version(u32),
    #[error(transparent)]
    /// Its forest failed.
    Forest(#[from] crate::forest::ForestError),
    #[error("reading the model: {0}")]
    /// The saved model is not valid JSON of a model.
    Decode(String),
}

/// Training settings of the whole model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    /// The isolation forest's settings.
    pub forest: ForestParams,
    /// The autoencoder's settings.
    pub autoencoder: AeParams,
    /// Share of the autoencoder in the mixed score (0 = forest only).
    pub ae_weight: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            forest: ForestParams::default(),
            autoencoder: AeParams::default(),
            ae_weight: 0.30,
        }
    }
}

/// One row's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Raw forest score, 2^(−E[h]/c(ψ)).
    pub forest: f64,
    /// Reconstruction error (NaN without an autoencoder).
    pub ae_error: f64,
    /// The reconstruction error's rank against the baseline in [0, 1] (NaN without an
    /// autoencoder): what an analyst reads instead of the raw error.
    pub ae_rank: f64,
    /// The mixed rank score in [0, 1].
    pub score: f64,
    /// Where both detectors agree the client sits: the lower of the forest's and the
    /// autoencoder's ranks (the forest's alone without an autoencoder). A client only this far
    /// out is beyond the baseline for each detector on its own.
    pub consensus: f64,
}

/// A trained, versioned model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// Its format ([`MODEL_VERSION`] when made by this build).
    pub version: u32,
    /// The features it was trained on, in order.
    pub features: Vec<String>,
    /// How it was trained.
    pub params: ModelParams,
    /// Rows it was trained on.
    pub trained_rows: usize,
    forest: Forest,
    forest_cdf: Cdf,
    autoencoder: Option<Autoencoder>,
    ae_cdf: Option<Cdf>,
    /// Why the autoencoder is missing, when it is.
    pub ae_failure: Option<String>,
    /// Per feature, the share of baseline clients whose value is above 0: what this site's
    /// people show (assets fetched, links followed), for the behaviour rules of
    /// [`crate::verdict`]. Empty in models saved before it existed.
    #[serde(default)]
    pub presence: Vec<f64>,
}

impl Model {
    /// Trains both models on a clean baseline `m` whose columns are `features`.
    pub fn train(m: Matrix, features: &[String], params: ModelParams) -> Result<Model, ModelError> {
        if features.len() != m.cols() {
            return Err(ModelError::Schema {
                model: features.join(", "),
                data: format!("{} columns", m.cols()),
            });
        }
        // The baseline's own scores are taken out of bag when trees sample fewer rows than the
        // baseline holds (in-sample scores are optimistic, which would make ordinary new
        // clients rank above the baseline); a baseline no larger than the sample is scored in
        // sample.
        let (forest, oob) = Forest::fit_oob(m, params.forest)?;
        let forest_cdf = Cdf::new(oob, 4096);
        let (autoencoder, ae_cdf, ae_failure) = if params.ae_weight > 0.0 {
            match Autoencoder::fit(m, params.autoencoder).and_then(|ae| {
                let e = ae.errors(m)?;
                Ok((ae, e))
            }) {
                Ok((ae, e)) => (Some(ae), Some(Cdf::new(e, 4096)), None),
                Err(e) => (None, None, Some(e.to_string())),
            }
        } else {
            (None, None, None)
        };
        let presence = presence(m);
        Ok(Model {
            version: MODEL_VERSION,
            features: features.to_vec(),
            params,
            trained_rows: m.rows(),
            presence,
            forest,
            forest_cdf,
            autoencoder,
            ae_cdf,
            ae_failure,
        })
    }

    /// Its isolation forest.
    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// Its autoencoder, if training it succeeded.
    pub fn autoencoder(&self) -> Option<&Autoencoder> {
        self.autoencoder.as_ref()
    }

    /// The share of baseline clients showing feature `name` (value above 0), if known.
    pub fn presence(&self, name: &str) -> Option<f64> {
        let i = self.features.iter().position(|f| f == name)?;
        self.presence.get(i).copied()
    }

    /// Checks that `features` are the model's, in order.
    pub fn check_schema(&self, features: &[String]) -> Result<(), ModelError> {
        if features != self.features.as_slice() {
            return Err(ModelError::Schema {
                model: self.features.join(", "),
                data: features.join(", "),
            });
        }
        Ok(())
    }

    /// Scores every row of `m` (columns `features`).
    pub fn score(&self, m: Matrix, features: &[String]) -> Result<Vec<Scored>, ModelError> {
        self.check_schema(features)?;
        let f = self.forest.score(m, 0)?;
        let ae = match (&self.autoencoder, &self.ae_cdf) {
            (Some(a), Some(c)) => a.errors(m).ok().map(|e| (e, c)),
            _ => None,
        };
        let w = if ae.is_some() {
            self.params.ae_weight
        } else {
            0.0
        };
        Ok(f.iter()
            .enumerate()
            .map(|(i, &fs)| {
                let ae_error = ae.as_ref().map_or(f64::NAN, |(e, _)| e[i]);
                let ae_rank = ae.as_ref().map(|(e, c)| c.rank(e[i]));
                let forest_rank = self.forest_cdf.rank(fs);
                Scored {
                    forest: fs,
                    ae_error,
                    ae_rank: ae_rank.unwrap_or(f64::NAN),
                    score: (1.0 - w) * forest_rank + w * ae_rank.unwrap_or(0.0),
                    consensus: ae_rank.map_or(forest_rank, |a| a.min(forest_rank)),
                }
            })
            .collect())
    }

    /// The features that drove row `row`'s score, strongest first: the forest's path
    /// attribution mixed with the autoencoder's per-feature error share by `ae_weight`.
    pub fn explain(&self, row: &[f64]) -> Vec<(String, f64)> {
        let mut c = self.forest.explain_row(row);
        if let Some(ae) = &self.autoencoder {
            let fe = ae.feature_errors(row);
            let total: f64 = fe.iter().sum();
            if total > 0.0 {
                let w = self.params.ae_weight;
                for (ci, e) in c.iter_mut().zip(&fe) {
                    *ci = (1.0 - w) * *ci + w * e / total;
                }
            }
        }
        let mut out: Vec<(String, f64)> = self.features.iter().cloned().zip(c).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The model as JSON (what `train` saves).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A model saved by [`Model::to_json`].
    pub fn from_json(s: &str) -> Result<Model, ModelError> {
        #[derive(Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head = serde_json::from_str(s).map_err(|e| ModelError::Decode(e.to_string()))?;
        if head.version != MODEL_VERSION {
            return Err(ModelError::Version(head.version));
        }
        serde_json::from_str(s).map_err(|e| ModelError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::rng::Rng;

    fn rows(n: usize, outliers: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut r = Rng::new(seed, 3);
        let mut d = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let (a, b) = (r.normal(), r.normal());
            let out = i < outliers;
            // Outliers: in range on every axis but off the correlation.
            let c = if out { a + b + 4.0 } else { a + b };
            d.extend_from_slice(&[a, b, c, 0.3 * a]);
            y.push(out);
        }
        (d, y)
    }

    #[test]
    fn cdf_ranks() {
        let c = Cdf::new(vec![1.0, 2.0, 3.0, 4.0], 10);
        // k-th of n at k/(n+1); between order statistics half a step up.
        assert_eq!(c.rank(1.0), 0.2);
        assert_eq!(c.rank(2.0), 0.4);
        assert!((c.rank(2.5) - 0.5).abs() < 1e-12);
        assert_eq!(c.rank(4.0), 0.8);
        assert_eq!(c.rank(0.0), 0.1);
        // Past the maximum: along the tail towards 1, never reaching it.
        let (a, b, far) = (c.rank(4.1), c.rank(5.0), c.rank(100.0));
        assert!(0.8 < a && a < b && b < far && far <= 1.0, "{a} {b} {far}");
        assert!(far > 0.999);
        // A single outlier of a 40-client baseline is not "beyond everything".
        let forty = Cdf::new((0..40).map(f64::from).collect(), 1000);
        assert!(forty.rank(39.2) < 0.98);
        let big = Cdf::new((0..100_000).map(f64::from).collect(), 1000);
        assert!((big.rank(50_000.0) - 0.5).abs() < 0.01);
    }

    #[test]
    fn mixed_score_beats_or_matches_the_forest_alone_and_explains() {
        let names: Vec<String> = ["a", "b", "a_plus_b", "a_scaled"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (train, _) = rows(3000, 0, 1);
        let m = Matrix::new(&train, 4).unwrap();
        let model = Model::train(
            m,
            &names,
            ModelParams {
                forest: ForestParams {
                    seed: 2,
                    ..Default::default()
                },
                autoencoder: AeParams {
                    epochs: 25,
                    seed: 2,
                    ..Default::default()
                },
                ae_weight: 0.3,
            },
        )
        .unwrap();
        assert!(model.ae_failure.is_none());
        // Every baseline row has a > 0 about half the time (a standard normal).
        let a = model.presence("a").unwrap();
        assert!((0.45..0.55).contains(&a), "{a}");
        assert_eq!(model.presence("nope"), None);
        let (test, y) = rows(2000, 40, 7);
        let t = Matrix::new(&test, 4).unwrap();
        let s = model.score(t, &names).unwrap();
        let mixed: Vec<f64> = s.iter().map(|x| x.score).collect();
        let forest: Vec<f64> = s.iter().map(|x| x.forest).collect();
        let (am, af) = (roc_auc(&mixed, &y), roc_auc(&forest, &y));
        assert!(am >= af - 0.005 && am > 0.9, "mixed {am} forest {af}");
        assert!(s.iter().all(|x| (0.0..=1.0).contains(&x.score)));
        // The broken correlation shows in the explanation.
        let top = &model.explain(t.row(0))[0].0;
        assert!(["a", "b", "a_plus_b"].contains(&top.as_str()), "{top}");
        // Persistence keeps the scores; schema and version are checked.
        let back = Model::from_json(&model.to_json()).unwrap();
        assert!(back.score(t, &names).unwrap() == s);
        let wrong: Vec<String> = names.iter().rev().cloned().collect();
        assert!(matches!(
            back.score(t, &wrong),
            Err(ModelError::Schema { .. })
        ));
        let old = model
            .to_json()
            .replacen("\"version\":1", "\"version\":0", 1);
        assert_eq!(Model::from_json(&old).unwrap_err(), ModelError::Version(0));
    }

    #[test]
    fn forest_alone_when_the_autoencoder_is_off() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let (train, _) = rows(500, 0, 1);
        let m = Matrix::new(&train, 4).unwrap();
        let model = Model::train(
            m,
            &names,
            ModelParams {
                ae_weight: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(model.autoencoder().is_none());
        let s = model.score(m, &names).unwrap();
        assert!(s.iter().all(|x| x.ae_error.is_nan()));
    }
}
