"""scikit-learn on the exact rows the Rust walk-forward used.

Reads target/model-eval/YYYY-MM.csv (one file per month: the training rows,
`part` = train | valid, and the month's test rows, `part` = test, with the
same imputed feature columns the Rust models saw) and rust_results.json, fits
scikit-learn's LogisticRegression (standardized, C = 1) and
RandomForestClassifier (defaults, and with the Rust forest's settings) on the
train + valid rows of each month, scores that month's test rows, and prints
one table with both sides. Timing: fit time per monthly retraining, and
predict_proba time per 1,000 invoices (one call on all test rows pooled, the
most favourable case for scikit-learn, and per-month calls).
"""

import csv
import glob
import json
import os
import sys
import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0


def load_month(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    part = np.array([r[2] for r in body])
    y = np.array([int(r[3]) for r in body])
    x = np.array([[float(v) for v in r[4:]] for r in body])
    return header[4:], part, x, y


def metrics(y, p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, p, labels=[0, 1]),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
    }


class TunedLogistic:
    """LogisticRegression with C picked on the validation rows from the grid
    the Rust trainer searches (its L2 penalty per row p is C = 1 / (p * rows)),
    by validation log-loss, then refitted on train + valid rows."""

    def __init__(self, penalties):
        self.penalties = penalties
        self.chosen = None

    def fit_parts(self, x, y, part):
        tr, va = part == "train", part == "valid"
        best = None
        for pen in self.penalties:
            m = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=1.0 / (pen * tr.sum()), max_iter=5000),
            ).fit(x[tr], y[tr])
            ll = log_loss(y[va], m.predict_proba(x[va])[:, 1], labels=[0, 1])
            if best is None or ll < best[0]:
                best = (ll, pen)
        fit = tr | va
        self.chosen = best[1]
        self.model = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0 / (best[1] * fit.sum()), max_iter=5000),
        ).fit(x[fit], y[fit])
        return self

    def predict_proba(self, x):
        return self.model.predict_proba(x)


def models(rust_forest):
    return {
        "scikit-learn logistic regression (C=1)": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)
        ),
        "scikit-learn logistic regression (C tuned like Rust's)": lambda: TunedLogistic(
            rust_forest["penalties"]
        ),
        "scikit-learn random forest (defaults, 100 trees)": lambda: RandomForestClassifier(
            n_estimators=100, random_state=SEED
        ),
        "scikit-learn random forest (Rust's settings)": lambda: RandomForestClassifier(
            n_estimators=rust_forest["trees"],
            max_depth=rust_forest["depth"],
            min_samples_leaf=rust_forest["leaf"],
            min_samples_split=rust_forest["split"],
            random_state=SEED,
        ),
    }


def main(out):
    files = sorted(glob.glob(os.path.join(out, "[0-9][0-9][0-9][0-9]-[0-9][0-9].csv")))
    if not files:
        sys.exit(f"no month files in {out}: run bench/model_eval.sh")
    with open(os.path.join(out, "rust_results.json")) as f:
        rust = json.load(f)
    fc = rust["train_config"]["forest"]
    rust_forest = {
        "trees": fc["n_trees"],
        "depth": fc["max_depth"],
        "leaf": fc["min_samples_leaf"],
        "split": fc["min_samples_split"],
        "penalties": rust["train_config"]["lr_penalties"],
    }
    makers = models(rust_forest)
    preds = {name: [] for name in makers}
    fit_s = {name: [] for name in makers}
    per_month_score = {name: [] for name in makers}
    ys, tests, last = [], [], {}
    for path in files:
        _, part, x, y = load_month(path)
        train = part != "test"
        xt, yt = x[train], y[train]
        xs, ys_m = x[~train], y[~train]
        ys.append(ys_m)
        tests.append(xs)
        for name, make in makers.items():
            m = make()
            t0 = time.perf_counter()
            if isinstance(m, TunedLogistic):
                m.fit_parts(x[train], y[train], part[train])
            else:
                m.fit(xt, yt)
            fit_s[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            p = m.predict_proba(xs)[:, 1]
            per_month_score[name].append((time.perf_counter() - t0) / len(xs) * 1e6)
            preds[name].append(p)
            last[name] = m
    y = np.concatenate(ys)
    pooled = np.vstack(tests)
    results = {}
    for name in makers:
        p = np.concatenate(preds[name])
        # One predict_proba call on every test row, best of 5.
        best = min(
            _timed(lambda: last[name].predict_proba(pooled)) for _ in range(5)
        )
        results[name] = {
            **metrics(y, p),
            "fit_s": float(np.mean(fit_s[name])),
            "score_ms_per_1000": best / len(pooled) * 1e6,
            "score_ms_per_1000_monthly_calls": float(np.mean(per_month_score[name])),
        }

    rust_rows = {
        "Rust chosen per month (smartcore, Platt-calibrated)": rust["chosen"],
        "Rust logistic regression (smartcore, calibrated)": rust["logistic_regression"],
        "Rust random forest (smartcore, calibrated)": rust.get("random_forest"),
        "Baseline: customer's prior late rate": rust["baseline"],
    }
    t = rust["timing"]
    rust_fit = {
        "Rust chosen per month (smartcore, Platt-calibrated)": t["train_seconds_total"] / max(1, len(rust["months"])),
        "Rust logistic regression (smartcore, calibrated)": t["fit_seconds_lr"],
        "Rust random forest (smartcore, calibrated)": t["fit_seconds_rf"],
    }
    rust_score = {
        "Rust chosen per month (smartcore, Platt-calibrated)": None,
        "Rust logistic regression (smartcore, calibrated)": t["score_ms_per_1000_lr"],
        "Rust random forest (smartcore, calibrated)": t["score_ms_per_1000_rf"],
    }

    def f(v, fmt="{:.3f}"):
        return "n/a" if v is None else fmt.format(v)

    lines = [
        f"Walk-forward: {len(files)} monthly retrainings, {len(y)} invoices scored 14 days before due "
        f"(late rate {np.mean(y):.3f}); {pooled.shape[1]} feature columns, identical rows for both sides.",
        "",
        "| model | ROC AUC | PR AUC | Brier | log-loss | accuracy@0.5 | fit per retraining | scoring per 1,000 invoices |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in rust_rows.items():
        if m is None:
            continue
        fit = rust_fit.get(name)
        sc = rust_score.get(name)
        lines.append(
            f"| {name} | {f(m['roc_auc'])} | {f(m['pr_auc'])} | {f(m['brier'])} | {f(m['log_loss'])} | "
            f"{f(m['accuracy'])} | {f(fit, '{:.3f} s')} | {f(sc, '{:.3f} ms')} |"
        )
    for name, m in results.items():
        lines.append(
            f"| {name} | {f(m['roc_auc'])} | {f(m['pr_auc'])} | {f(m['brier'])} | {f(m['log_loss'])} | "
            f"{f(m['accuracy'])} | {f(m['fit_s'], '{:.3f} s')} | {f(m['score_ms_per_1000'], '{:.3f} ms')} "
            f"({f(m['score_ms_per_1000_monthly_calls'], '{:.2f}')} ms in monthly calls) |"
        )
    best_sk = max(results.values(), key=lambda m: m["roc_auc"])
    best_sk_name = max(results, key=lambda n: results[n]["roc_auc"])
    chosen = rust["chosen"]
    lines += [
        "",
        f"Features computed from the book and scored (chosen model), per 1,000 invoices: "
        f"{t['features_and_score_ms_per_1000']:.2f} ms.",
        f"Best scikit-learn ROC AUC: {best_sk['roc_auc']:.3f} ({best_sk_name}); "
        f"Rust chosen: {chosen['roc_auc']:.3f}; baseline: {rust['baseline']['roc_auc']:.3f}.",
    ]
    speed = []
    for rust_name, sk_name in [
        ("Rust logistic regression (smartcore, calibrated)", "scikit-learn logistic regression (C=1)"),
        ("Rust random forest (smartcore, calibrated)", "scikit-learn random forest (Rust's settings)"),
    ]:
        r = rust_score.get(rust_name)
        s = results[sk_name]["score_ms_per_1000"]
        if r:
            speed.append(f"{rust_name.split(' (')[0]} scores {s / r:.0f}x faster than {sk_name.split(' (')[0]}'s predict_proba")
    lines.append("Scoring speed (pooled call for scikit-learn): " + "; ".join(speed) + ".")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(out, "table.md"), "w") as fh:
        fh.write(table + "\n")
    with open(os.path.join(out, "sklearn_results.json"), "w") as fh:
        json.dump(results, fh, indent=2)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/model-eval")
