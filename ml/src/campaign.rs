//! Campaign clustering: flagged clients whose behaviour (the autoencoder's 16-d latent code)
//! is alike are grouped with HDBSCAN, so one tool across many addresses shows as one campaign.
//!
//! Owns: the cap on points (HDBSCAN is about quadratic: 50k points took 17 s in a
//! measurement), a deterministic subsample above it with the rest joined to their nearest
//! clustered neighbour, and the labels (−1 = no campaign).
//! Never: fails scoring: a clustering error leaves every client without a campaign.

use hdbscan::{Hdbscan, HdbscanHyperParams};

#[derive(Debug, Clone, Copy, PartialEq)]
/// How flagged clients are grouped into campaigns (HDBSCAN).
pub struct CampaignParams {
    /// Fewest clients that make a campaign.
    pub min_cluster_size: usize,
    /// Most points clustered directly.
    pub max_points: usize,
}

impl Default for CampaignParams {
    fn default() -> Self {
        CampaignParams {
            min_cluster_size: 5,
            max_points: 5000,
        }
    }
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Campaign label of each of the `points.len() / dims` points (row-major), −1 for none.
pub fn cluster(points: &[f64], dims: usize, p: CampaignParams) -> Vec<i32> {
    let n = points.len().checked_div(dims).unwrap_or(0);
    if n < p.min_cluster_size.max(2) {
        return vec![-1; n];
    }
    // Each dimension in units of its spread over these points, so no one dimension rules.
    let mut z = points.to_vec();
    for d in 0..dims {
        let mean = (0..n).map(|i| points[i * dims + d]).sum::<f64>() / n as f64;
        let sd = ((0..n)
            .map(|i| (points[i * dims + d] - mean).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        for i in 0..n {
            z[i * dims + d] = if sd > 1e-12 {
                (points[i * dims + d] - mean) / sd
            } else {
                0.0
            };
        }
    }
    let points = &z[..];
    let row = |i: usize| &points[i * dims..(i + 1) * dims];
    // Evenly spaced subsample when there are too many points.
    let chosen: Vec<usize> = if n > p.max_points {
        (0..p.max_points).map(|k| k * n / p.max_points).collect()
    } else {
        (0..n).collect()
    };
    let data: Vec<Vec<f64>> = chosen.iter().map(|&i| row(i).to_vec()).collect();
    // A window may hold a single campaign among scattered clients: without
    // `allow_single_cluster` HDBSCAN would call it all noise. Clusters closer than one
    // standard unit are one campaign (EOM alone split one tool's clients in two).
    let params = HdbscanHyperParams::builder()
        .min_cluster_size(p.min_cluster_size)
        .min_samples(2)
        .allow_single_cluster(true)
        .epsilon(1.0)
        .build();
    let labels = match Hdbscan::new(&data, params).cluster() {
        Ok(l) => l,
        Err(_) => return vec![-1; n],
    };
    let mut out = vec![-1; n];
    for (&i, &l) in chosen.iter().zip(&labels) {
        out[i] = l;
    }
    absorb_fringe(points, dims, &chosen, &mut out);
    if chosen.len() < n {
        // The others join their nearest clustered point's campaign.
        let clustered: Vec<usize> = chosen.iter().copied().filter(|&i| out[i] >= 0).collect();
        let mut is_chosen = vec![false; n];
        chosen.iter().for_each(|&i| is_chosen[i] = true);
        for i in (0..n).filter(|&i| !is_chosen[i]) {
            if let Some(&j) = clustered
                .iter()
                .min_by(|&&a, &&b| dist2(row(i), row(a)).total_cmp(&dist2(row(i), row(b))))
            {
                out[i] = out[j];
            }
        }
    }
    out
}

/// HDBSCAN keeps only the densest core of a loose group: a noise point joins the campaign of
/// its nearest member when it is no farther from it than twice the largest nearest-neighbour
/// distance inside that campaign.
fn absorb_fringe(points: &[f64], dims: usize, chosen: &[usize], out: &mut [i32]) {
    let row = |i: usize| &points[i * dims..(i + 1) * dims];
    let members: Vec<usize> = chosen.iter().copied().filter(|&i| out[i] >= 0).collect();
    if members.is_empty() {
        return;
    }
    let mut spread: std::collections::HashMap<i32, f64> = Default::default();
    for &i in &members {
        let nn = members
            .iter()
            .filter(|&&j| j != i && out[j] == out[i])
            .map(|&j| dist2(row(i), row(j)))
            .fold(f64::INFINITY, f64::min);
        if nn.is_finite() {
            let e = spread.entry(out[i]).or_insert(0.0);
            *e = e.max(nn);
        }
    }
    let noise: Vec<usize> = chosen.iter().copied().filter(|&i| out[i] < 0).collect();
    for i in noise {
        if let Some((&j, d)) = members
            .iter()
            .map(|j| (j, dist2(row(i), row(*j))))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        {
            // Squared distances: twice the distance is four times the square.
            if spread.get(&out[j]).is_some_and(|&s| d <= 4.0 * s) {
                out[i] = out[j];
            }
        }
    }
}

/// Purity of `labels` against the true `groups`: the share of clustered points that belong to
/// their cluster's majority group (1.0 = every campaign is one group).
pub fn purity(labels: &[i32], groups: &[usize]) -> f64 {
    let mut by_cluster: std::collections::HashMap<i32, std::collections::HashMap<usize, usize>> =
        Default::default();
    for (&l, &g) in labels.iter().zip(groups) {
        if l >= 0 {
            *by_cluster.entry(l).or_default().entry(g).or_default() += 1;
        }
    }
    let total: usize = by_cluster.values().flat_map(|m| m.values()).sum();
    if total == 0 {
        return 0.0;
    }
    let majority: usize = by_cluster
        .values()
        .map(|m| m.values().copied().max().unwrap_or(0))
        .sum();
    majority as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn blobs(per: usize, noise: usize) -> (Vec<f64>, Vec<usize>) {
        let mut r = Rng::new(3, 3);
        let mut pts = Vec::new();
        let mut g = Vec::new();
        for b in 0..3 {
            for _ in 0..per {
                for d in 0..16 {
                    let center = if d % 3 == b { 5.0 } else { 0.0 };
                    pts.push(center + r.normal() * 0.1);
                }
                g.push(b);
            }
        }
        for _ in 0..noise {
            for _ in 0..16 {
                pts.push(r.f64() * 40.0 - 20.0);
            }
            g.push(9);
        }
        (pts, g)
    }

    #[test]
    fn three_groups_three_campaigns() {
        let (pts, g) = blobs(30, 5);
        let l = cluster(&pts, 16, CampaignParams::default());
        for b in 0..3 {
            let labels: std::collections::HashSet<i32> =
                (0..90).filter(|&i| g[i] == b).map(|i| l[i]).collect();
            assert_eq!(labels.len(), 1, "group {b} split: {labels:?}");
            assert!(!labels.contains(&-1));
        }
        assert!(purity(&l, &g) > 0.95);
    }

    #[test]
    fn capped_clustering_assigns_everyone() {
        let (pts, g) = blobs(200, 0);
        let l = cluster(
            &pts,
            16,
            CampaignParams {
                max_points: 120,
                ..Default::default()
            },
        );
        assert!(l.iter().all(|&x| x >= 0));
        assert_eq!(purity(&l, &g), 1.0);
        assert_eq!(
            cluster(&pts[..32], 16, CampaignParams::default()),
            vec![-1, -1]
        );
    }
}
#[cfg(test)]
mod single_campaign {
    #[test]
    fn one_tight_group_among_scattered_points_is_one_campaign() {
        let mut r = crate::rng::Rng::new(1, 1);
        for jitter in [0.0, 0.01] {
            let mut pts = Vec::new();
            for _ in 0..10 {
                pts.extend((0..16).map(|_| 1.0 + r.normal() * jitter));
            }
            for i in 0..6 {
                pts.extend((0..16).map(|d| (i * 7 + d) as f64));
            }
            let l = super::cluster(&pts, 16, super::CampaignParams::default());
            assert!(
                l[0] >= 0 && l[..10].iter().all(|&x| x == l[0]),
                "jitter {jitter}: {l:?}"
            );
        }
    }
}
