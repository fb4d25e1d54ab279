"""Writes tests/data/vb_reference.txt: scikit-learn's BayesianGaussianMixture after a few
iterations from given responsibilities, for tests/test_vb_gmm.cpp.

Run with a Python that has scikit-learn (the version is recorded in the file):
    .venv/bin/python scripts/make_vb_reference.py

Every case starts from the same responsibilities through scikit-learn's _initialize(X, resp)
(the step its _initialize_parameters ends with), runs max_iter iterations with tol = 0 and
records lower_bounds_, the fitted posterior and score_samples / predict_proba on X. The
format is one array per line, "name count v1 ... vN" (repr floats, so exact), cases opened
by "case covariance_type weight_prior_type custom_priors".
"""

import os
import sys

import numpy as np
import sklearn
from sklearn.mixture import BayesianGaussianMixture

N, D, K, ITERATIONS = 90, 3, 4, 4


class _FromResp(BayesianGaussianMixture):
    """scikit-learn's estimator started from fixed responsibilities."""

    resp_init = None

    def _initialize_parameters(self, X, random_state, xp=None):
        self._initialize(X, self.resp_init)


def data():
    rng = np.random.default_rng(19)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 5.0, 1.0]])
    labels = rng.integers(0, 3, size=N)
    X = centres[labels] + rng.normal(size=(N, D)) @ np.array(
        [[1.0, 0.3, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 0.5]]
    )
    X += np.array([10.0, -3.0, 2.0])  # an offset, so that sums about zero would lose digits
    resp = rng.uniform(size=(N, K)) + 3.0 * (labels[:, None] == np.arange(K)[None, :])
    resp /= resp.sum(axis=1, keepdims=True)
    return X, resp


def custom_priors(covariance_type):
    cov = np.array([[2.0, 0.3, -0.1], [0.3, 1.5, 0.2], [-0.1, 0.2, 1.0]])
    return dict(
        weight_concentration_prior=0.5,
        mean_precision_prior=2.5,
        mean_prior=np.array([9.0, -2.0, 2.5]),
        degrees_of_freedom_prior=D + 1.5,
        covariance_prior={
            "full": cov,
            "tied": cov,
            "diag": np.diag(cov).copy(),
            "spherical": 1.7,
        }[covariance_type],
    )


def line(out, name, values):
    v = np.ravel(np.asarray(values, dtype=np.float64))
    out.write(f"{name} {v.size} " + " ".join(repr(float(x)) for x in v) + "\n")


def main():
    X, resp = data()
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "vb_reference.txt")
    with open(path, "w") as out:
        out.write(f"# scikit-learn {sklearn.__version__}, numpy {np.__version__}; scripts/make_vb_reference.py\n")
        line(out, "X", X)
        line(out, "resp", resp)
        for custom in (0, 1):
            for prior_type in ("dirichlet_process", "dirichlet_distribution"):
                for cov_type in ("full", "tied", "diag", "spherical"):
                    priors = custom_priors(cov_type) if custom else {}
                    est = _FromResp(
                        n_components=K,
                        covariance_type=cov_type,
                        weight_concentration_prior_type=prior_type,
                        max_iter=ITERATIONS,
                        tol=0.0,
                        **priors,
                    )
                    est.resp_init = resp
                    est.fit(X)
                    out.write(f"case {cov_type} {prior_type} {custom}\n")
                    if custom:
                        line(out, "weight_concentration_prior", priors["weight_concentration_prior"])
                        line(out, "mean_precision_prior", priors["mean_precision_prior"])
                        line(out, "mean_prior", priors["mean_prior"])
                        line(out, "degrees_of_freedom_prior", priors["degrees_of_freedom_prior"])
                        line(out, "covariance_prior", priors["covariance_prior"])
                    line(out, "lower_bounds", est.lower_bounds_)
                    wc = est.weight_concentration_
                    line(out, "weight_concentration", np.concatenate(wc) if isinstance(wc, tuple) else wc)
                    line(out, "mean_precision", est.mean_precision_)
                    line(out, "means", est.means_)
                    line(out, "degrees_of_freedom", est.degrees_of_freedom_)
                    line(out, "covariances", est.covariances_)
                    line(out, "precisions_cholesky", est.precisions_cholesky_)
                    line(out, "weights", est.weights_)
                    line(out, "score_samples", est.score_samples(X))
                    line(out, "predict_proba", est.predict_proba(X))
    print("wrote", os.path.normpath(path), file=sys.stderr)


if __name__ == "__main__":
    main()
