//! `ja4-dashboard`: the SOC analysts' web UI.
//!
//! Will own (issue 6): the embedded assets (no CDN, works offline), the axum routes of the views
//! (overview, detections, scores, campaigns, fingerprint, client drill-down, audit log, actions),
//! login, sessions, roles, CSRF and the audit trail.
//!
//! Must never: build SQL from strings a user typed; every filter is a bound parameter or a
//! validated identifier.
