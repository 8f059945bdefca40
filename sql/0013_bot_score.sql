-- ja4-platform schema, migration 0013: the bot score and the autoencoder's rank.
-- `bot_score` (1–99, 1 = automated, 99 = human-like; 0 = written before it existed) is the
-- verdict and score on the scale operators know from Cloudflare, see README "Bot score".
-- `ae_rank` is the reconstruction error's rank against the baseline (0–1), what an analyst
-- reads; `ae_recon_error` stays the raw error.
ALTER TABLE {db}.ml_all_scores
    ADD COLUMN IF NOT EXISTS bot_score UInt8 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS ae_rank   Float32 DEFAULT 0;

ALTER TABLE {db}.ml_detected_anomalies
    ADD COLUMN IF NOT EXISTS bot_score UInt8 DEFAULT 0;
