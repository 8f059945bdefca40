//! One detection cycle, the same for `serve`'s loop and the `train`/`score` commands: train a
//! model (and the analysts' classifier) when due, score a window, write the verdicts.
//!
//! Owns: [`ScoringConfig`] (`[scoring]` of `sidecar.toml`), which window a run scores
//! ([`window_for_run`]), when to retrain, the model's version as the verdicts name it
//! ([`model_version`]) and the detection counters ([`Counters`]).
//! Never: stops scoring because a retraining or the classifier failed (the current model
//! scores, the failure is counted and logged); never writes a verdict without its model's
//! version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Context, Result};
use ja4_ml::classifier::{Classifier, ClassifierParams};
use ja4_ml::{Model, ModelParams};
use ja4_store::Store;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::scoring;
use crate::verify::Verifier;

/// `[scoring]` of `sidecar.toml`: the scheduled detection loop of `serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Whether `serve` scores at all.
    pub enabled: bool,
    /// Seconds between scoring runs.
    pub interval_s: u64,
    /// Window each run scores.
    pub window_hours: u32,
    /// Every this many runs, score the long window instead: slow bots (a request every few
    /// minutes) only stand out over a day. 0 disables the slow pass.
    pub slow_every_runs: u32,
    /// The long window of the slow pass.
    pub slow_window_hours: u32,
    /// Retrain when the model is older than this (and at start without one).
    pub retrain_hours: u64,
    /// Traffic window the model learns from.
    pub train_window_hours: u32,
    /// Fewest clean clients to train on.
    pub min_train_rows: usize,
    /// Where models are saved (`model-<time>.json`, `current.json`, the classifier).
    pub models_dir: PathBuf,
    /// DNS resolver for crawler verification (`ip:port`); empty: /etc/resolv.conf's first.
    pub resolver: String,
    /// Where to publish the decisions snapshot for mod_ja4 (`JA4DecisionFile`) after every
    /// run; empty: not published.
    pub decisions_file: PathBuf,
    /// `serve` also publishes the snapshot this often (seconds; 0: only after scoring runs
    /// and the dashboard's list changes), so analysts' entries and the decisions of other
    /// sidecars sharing the store reach this node's httpd. Runs whether or not this node
    /// scores (`enabled`).
    pub publish_every_s: u64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            enabled: true,
            interval_s: 300,
            window_hours: 1,
            slow_every_runs: 12,
            slow_window_hours: 24,
            retrain_hours: 24,
            train_window_hours: 24,
            min_train_rows: 50,
            models_dir: PathBuf::from("/var/lib/ja4/models"),
            resolver: String::new(),
            decisions_file: PathBuf::new(),
            publish_every_s: 3,
        }
    }
}

impl ScoringConfig {
    /// How often the loop runs.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_s.max(1))
    }
}

/// What the detection cycles did, for `/metrics` (the names are those of the exposition,
/// `_total` added by it).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Detection cycles run.
    pub runs: Counter,
    /// Cycles that failed (logged; the next one runs as planned).
    pub errors: Counter,
    /// Clients scored.
    pub scored_clients: Counter,
    /// Detections written.
    pub detections: Counter,
    /// Models trained.
    pub trainings: Counter,
    /// Trainings whose autoencoder failed (the model scores with the forest alone).
    pub ae_failures: Counter,
    /// Classifiers trained on analysts' labels.
    pub classifier_trainings: Counter,
    /// Classifier trainings that failed (scoring goes on without it).
    pub classifier_failures: Counter,
}

impl Counters {
    /// Registers the counters under their exposition names.
    pub fn register(&self, r: &mut Registry) {
        for (name, help, c) in [
            ("ja4_scoring_runs", "Scoring runs completed.", &self.runs),
            (
                "ja4_scoring_errors",
                "Scoring or training runs that failed.",
                &self.errors,
            ),
            (
                "ja4_scored_clients",
                "Clients scored.",
                &self.scored_clients,
            ),
            (
                "ja4_detections",
                "Suspicious and bot verdicts written.",
                &self.detections,
            ),
            ("ja4_model_trainings", "Models trained.", &self.trainings),
            (
                "ja4_classifier_trainings",
                "Supervised classifiers trained (enough analyst labels).",
                &self.classifier_trainings,
            ),
            (
                "ja4_classifier_failures",
                "Scoring runs whose classifier could not be loaded (unsupervised verdicts only).",
                &self.classifier_failures,
            ),
            (
                "ja4_model_autoencoder_failures",
                "Trainings whose autoencoder failed (the forest scored alone).",
                &self.ae_failures,
            ),
        ] {
            r.register(name, help, c.clone());
        }
    }
}

/// The window run number `run` (from 1) scores: the long one every `slow_every_runs` runs.
pub fn window_for_run(cfg: &ScoringConfig, run: u64) -> u32 {
    let every = u64::from(cfg.slow_every_runs);
    if every > 0 && run.is_multiple_of(every) {
        cfg.slow_window_hours.max(1)
    } else {
        cfg.window_hours.max(1)
    }
}

/// A model trained and saved, and what became of the classifier.
#[derive(Debug)]
pub struct Trained {
    /// The model.
    pub model: Model,
    /// `<models_dir>/model-<time>.json` (also copied to `current.json`).
    pub path: PathBuf,
    /// The classifier and where it was saved, or why there is none this time (too few
    /// analyst labels, a failed training).
    pub classifier: Result<(Classifier, PathBuf)>,
}

/// Trains a model on the clean clients of the last `hours` and saves it as the current one,
/// then the classifier on the analysts' labels of the same window when there are enough.
pub fn train_and_save(
    store: &Store,
    db: &str,
    models_dir: &Path,
    hours: u32,
    params: ModelParams,
    min_clients: usize,
) -> Result<Trained> {
    let model = scoring::train(store, db, hours, params, min_clients)?;
    let path = scoring::save_model(models_dir, &model)?;
    let classifier = scoring::train_classifier(store, db, hours, &ClassifierParams::default())
        .and_then(|c| {
            let p = scoring::save_classifier(models_dir, &c)?;
            Ok((c, p))
        });
    Ok(Trained {
        model,
        path,
        classifier,
    })
}

/// The version the verdicts of a model loaded from `path` carry: the `model-<time>` name it
/// was saved under; for `current.json` (a copy of the newest), the newest `model-*` beside
/// it, or `current` when there is none.
pub fn model_version(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem != "current" {
        return stem;
    }
    path.parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("model-") && n.ends_with(".json"))
                .max()
        })
        .map(|n| n.trim_end_matches(".json").to_owned())
        .unwrap_or(stem)
}

/// What [`score_and_write`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    /// Clients scored.
    pub clients: usize,
    /// Of them, detections written.
    pub detections: usize,
    /// Why the classifier in the models directory could not be used (scored without it).
    pub classifier_error: Option<String>,
}

/// Scores the last `hours` with `model` (and the classifier in `models_dir`, when one loads)
/// and writes the verdicts under `version`.
#[allow(clippy::too_many_arguments)]
pub fn score_and_write(
    store: &Store,
    db: &str,
    hours: u32,
    model: &Model,
    version: &str,
    models_dir: &Path,
    verifier: Option<&Verifier>,
) -> Result<Scored> {
    let (classifier, classifier_error) = match scoring::load_classifier(models_dir) {
        Ok(c) => (c, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let results = scoring::score_with(
        store,
        db,
        hours,
        model,
        classifier.as_ref(),
        verifier,
        &ja4_ml::verdict::Thresholds::default(),
    )?;
    let (clients, detections) = scoring::write(store, db, &format!("{hours}h"), version, &results)?;
    Ok(Scored {
        clients,
        detections,
        classifier_error,
    })
}

/// One run of `serve`'s loop over the last `window_hours`: train when the model is missing,
/// older than `retrain_hours` or made for other features, then score and write.
pub fn run_cycle(
    cfg: &ScoringConfig,
    db: &str,
    store: &Store,
    c: &Counters,
    verifier: Option<&Verifier>,
    window_hours: u32,
) -> Result<Scored> {
    let current = cfg.models_dir.join("current.json");
    let age = std::fs::metadata(&current)
        .and_then(|md| md.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    // The current model, read once. One from before a feature change cannot score today's
    // rows: retrain it now.
    let mut model = age.and_then(|_| scoring::load_model(&current).ok());
    let stale_schema = model
        .as_ref()
        .is_some_and(|m| m.features != scoring::feature_names());
    if stale_schema || age.is_none_or(|a| a.as_secs() >= cfg.retrain_hours * 3600) {
        match train_and_save(
            store,
            db,
            &cfg.models_dir,
            cfg.train_window_hours,
            ModelParams::default(),
            cfg.min_train_rows,
        ) {
            Ok(t) => {
                if let Some(why) = &t.model.ae_failure {
                    c.ae_failures.inc();
                    tracing::warn!(error = %why, "autoencoder failed: the forest scores alone");
                }
                c.trainings.inc();
                tracing::info!(model = %t.path.display(), rows = t.model.trained_rows, "trained a model");
                match &t.classifier {
                    Ok((k, _)) => {
                        c.classifier_trainings.inc();
                        tracing::info!(
                            positives = k.positives,
                            negatives = k.negatives,
                            oob_auc = k.oob_auc,
                            "trained the classifier"
                        );
                    }
                    Err(e) => tracing::info!(reason = %format!("{e:#}"), "no classifier this time"),
                }
                model = Some(t.model);
            }
            // Not enough traffic yet: score with the old model if there is one.
            Err(e) if age.is_some() => {
                tracing::warn!(error = %format!("{e:#}"), "retraining failed; keeping the current model")
            }
            Err(e) => return Err(e.context("training the first model")),
        }
    }
    let model = match model {
        Some(m) => m,
        // Names the file and why it cannot be read.
        None => scoring::load_model(&current)?,
    };
    let scored = score_and_write(
        store,
        db,
        window_hours,
        &model,
        &model_version(&current),
        &cfg.models_dir,
        verifier,
    )
    .context("scoring")?;
    if let Some(e) = &scored.classifier_error {
        c.classifier_failures.inc();
        tracing::warn!(error = %e, "classifier unusable: scoring without it");
    }
    c.runs.inc();
    c.scored_clients.inc_by(scored.clients as u64);
    c.detections.inc_by(scored.detections as u64);
    tracing::info!(
        clients = scored.clients,
        detections = scored.detections,
        "scored"
    );
    if !cfg.decisions_file.as_os_str().is_empty() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        // A failed publication leaves httpd the previous snapshot (it expires by itself).
        match crate::decisions::publish(store, db, &cfg.decisions_file, window_hours.max(1), now_ms)
        {
            Ok(p) => tracing::info!(scored = p.scored, listed = p.listed, "published decisions"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "publishing decisions failed"),
        }
    }
    Ok(scored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slow_window_comes_every_nth_run() {
        let cfg = ScoringConfig::default();
        let windows: Vec<u32> = (1..=24).map(|r| window_for_run(&cfg, r)).collect();
        assert_eq!(windows.iter().filter(|&&w| w == 24).count(), 2);
        assert_eq!((windows[11], windows[23], windows[0]), (24, 24, 1));
        let off = ScoringConfig {
            slow_every_runs: 0,
            ..Default::default()
        };
        assert!((1..=48).all(|r| window_for_run(&off, r) == 1));
    }

    #[test]
    fn versions_name_the_saved_model() {
        let dir = std::env::temp_dir().join(format!("ja4-version-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let current = dir.join("current.json");
        assert_eq!(model_version(&current), "current");
        for n in [
            "model-100.json",
            "model-200.json",
            "classifier.json",
            "model-150.txt",
        ] {
            std::fs::write(dir.join(n), b"{}").unwrap();
        }
        assert_eq!(model_version(&current), "model-200");
        assert_eq!(model_version(&dir.join("model-100.json")), "model-100");
        assert_eq!(model_version(Path::new("/elsewhere/mine.json")), "mine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
