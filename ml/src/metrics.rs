//! Rank statistics for the models: average ranks (ties share their mean rank) and ROC AUC.
//!
//! Owns: the one definition of ROC AUC the tests, the lab and `ml fit-score` report.
//! Never: allocates more than one index vector per call.

/// Ranks of `v` scaled to [0, 1] (ties get their average rank; one value gives 0.5).
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        // 0-based ranks i..=j share their mean.
        let r = (i + j) as f64 / 2.0;
        for &k in &order[i..=j] {
            out[k] = if n > 1 { r / (n - 1) as f64 } else { 0.5 };
        }
        i = j + 1;
    }
    out
}

/// Area under the ROC curve of `scores` (higher = more positive) for `labels`
/// (Mann–Whitney U with average ranks for ties). 0.5 when one class is missing.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    let n = scores.len();
    let r = ranks(scores);
    // Back to 1-based ranks.
    let sum_pos: f64 = r
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(&x, _)| x * (n - 1) as f64 + 1.0)
        .sum();
    let u = sum_pos - (pos * (pos + 1)) as f64 / 2.0;
    u / (pos as f64 * neg as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_known_values() {
        assert_eq!(
            roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            0.75
        );
        assert_eq!(roc_auc(&[1.0, 2.0], &[false, true]), 1.0);
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, false]), 0.0);
        assert_eq!(roc_auc(&[3.0, 3.0, 3.0], &[true, false, false]), 0.5);
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), 0.5);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            ranks(&[10.0, 20.0, 20.0, 5.0]),
            vec![1.0 / 3.0, 2.5 / 3.0, 2.5 / 3.0, 0.0]
        );
        assert_eq!(ranks(&[7.0]), vec![0.5]);
    }
}
