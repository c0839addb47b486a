"""The learned scheduler setting XGBoost's eta every round, with ``xgb.train``.

Gradient-boosted trees (depth 3) on scikit-learn's bundled breast-cancer data (offline),
200 rounds on CPU. The callback reads the training and validation log-loss and error
from the evaluation log after every round and the agent re-decides eta every 10 rounds.
A constant-eta run is printed beside it for reference. Run:

    python examples/xgboost_native.py
"""

import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from lrgym.integrations.xgboost_callback import XGBoostPolicyCallback

ROUNDS, K = 200, 10


def main() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=0)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0)
    dtrain = xgb.DMatrix(x_train, label=y_train)
    dval = xgb.DMatrix(x_val, label=y_val)
    dtest = xgb.DMatrix(x_test, label=y_test)
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "error"],  # loss first; 1 - error becomes the val metric
        "eta": 0.3,  # the initial eta; the agent takes it from here
        "max_depth": 3,
        "subsample": 0.8,
        "seed": 0,
        "nthread": 1,
    }

    callback = XGBoostPolicyCallback(total_rounds=ROUNDS, decision_interval=K)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=ROUNDS,
        evals=[(dtrain, "train"), (dval, "val")],  # first: training loss; last: validation
        callbacks=[callback],
        verbose_eval=False,
    )
    for start in range(0, ROUNDS, 2 * K):
        print(f"rounds {start + 1:3d}-{start + K:3d}  eta {callback.etas[start]:.3g}")

    constant = xgb.train(params, dtrain, num_boost_round=ROUNDS)

    def accuracy(model: xgb.Booster) -> float:
        return float(((model.predict(dtest) > 0.5) == y_test).mean())

    print(
        f"test accuracy: learned eta {accuracy(booster):.3f}, constant eta {accuracy(constant):.3f}"
    )


if __name__ == "__main__":
    main()
