#!/usr/bin/env bash
# The isolation forest against isotree (PyPI), side by side on the same feature matrix, same
# trees and sample size: ROC AUC (mean over SEEDS fits, as one fit varies by a few 1e-3),
# fit time, scoring throughput on one thread and on all cores, for the standard forest
# (1 feature per split) and the fully extended one.
# Usage: bench/forest.sh [ROWS] [FEATURES] [SEEDS]   (default 200000 12 5)
# isotree builds from source (C++) into .cache/bench-venv on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-200000}; COLS=${2:-12}; SEEDS=${3:-5}
VENV=.cache/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import isotree, numpy, scipy" 2>/dev/null || "$VENV/bin/pip" install -q isotree numpy pandas scipy
cargo build -q --release -p ja4-sidecar --bin ja4-sidecar
work=$(mktemp -d /tmp/ja4-forest.XXXXXX); trap 'rm -rf "$work"' EXIT
# Three correlated clusters of normal traffic plus 1% anomalies: half scattered far out,
# half close to a cluster but off its correlation structure.
"$VENV/bin/python" - "$work/x.csv" "$ROWS" "$COLS" <<'PY'
import sys, numpy as np
path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(42)
n_out = n // 100
centers = rng.normal(0, 6, size=(3, d))
mix = rng.normal(0, 1, size=(3, d, d)) / np.sqrt(d)
which = rng.integers(0, 3, size=n - n_out)
X = np.einsum('nij,nj->ni', mix[which], rng.normal(0, 1, size=(n - n_out, d))) * 2 + centers[which]
far = rng.uniform(-25, 25, size=(n_out // 2, d))
near = centers[rng.integers(0, 3, size=n_out - n_out // 2)] + rng.normal(0, 3.5, size=(n_out - n_out // 2, d))
X = np.vstack([X, far, near]); y = np.r_[np.zeros(n - n_out), np.ones(n_out)]
p = rng.permutation(n); X, y = X[p], y[p]
with open(path, "w") as f:
    f.write(",".join([f"f{i}" for i in range(d)] + ["label"]) + "\n")
    np.savetxt(f, np.c_[X, y], delimiter=",", fmt="%.6g")
PY
printf '%-10s %-9s %8s %9s %16s %16s\n' impl split roc_auc fit_s rows/s_1thread rows/s_all
for k in 1 "$COLS"; do
  aucs=()
  for seed in $(seq 1 "$SEEDS"); do
    for threads in 1 0; do
      [ "$threads" = 0 ] && [ "$seed" != 1 ] && continue
      out=$(target/release/ja4-sidecar ml fit-score --input "$work/x.csv" --label label --trees 200 \
            --sample 256 --features-per-split "$k" --seed "$seed" --threads "$threads" --out "$work/s.csv" 2>&1)
      fit=$(sed -n 's/.*fit_seconds=\([0-9.]*\).*/\1/p' <<<"$out")
      rps=$(sed -n 's/.*score_rows_per_s=\([0-9]*\).*/\1/p' <<<"$out")
      if [ "$threads" = 1 ]; then aucs+=("$(sed -n 's/^roc_auc=//p' <<<"$out")"); [ "$seed" = 1 ] && { r1=$rps; f1=$fit; }; else rall=$rps; fi
    done
  done
  auc=$(printf '%s\n' "${aucs[@]}" | awk '{s += $1} END {printf "%.6f", s / NR}')
  printf '%-10s %-9s %8s %9s %16s %16s\n' ja4-ml "k=$k" "$auc" "$f1" "$r1" "$rall"
  "$VENV/bin/python" - "$work/x.csv" "$k" "$SEEDS" <<'PY'
import sys, time, numpy as np
from isotree import IsolationForest
X = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1); y = X[:, -1] > 0; X = np.ascontiguousarray(X[:, :-1])
k = int(sys.argv[2])
def auc(s, y):
    r = np.empty(len(s)); o = np.argsort(s, kind="mergesort"); r[o] = np.arange(1, len(s) + 1)
    # average ranks for ties
    _, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r); r = (sums / cnt)[inv]
    p = y.sum(); q = len(y) - p
    return (r[y].sum() - p * (p + 1) / 2) / (p * q)
res, aucs = {}, []
for seed in range(1, int(sys.argv[3]) + 1):
    for threads in (1, -1):
        if threads == -1 and seed != 1:
            continue
        m = IsolationForest(ntrees=200, sample_size=256, ndim=k, nthreads=threads, random_seed=seed,
                            missing_action="fail", penalize_range=False, prob_pick_pooled_gain=0.0)
        t = time.perf_counter(); m.fit(X); fit = time.perf_counter() - t
        t = time.perf_counter(); s = m.predict(X); sc = time.perf_counter() - t
        if threads == 1:
            aucs.append(auc(s, y))
        if seed == 1:
            res[threads] = (fit, len(X) / sc)
print(f"{'isotree':<10} {'k='+str(k):<9} {np.mean(aucs):8.6f} {res[1][0]:9.3f} {res[1][1]:16.0f} {res[-1][1]:16.0f}")
PY
done
