"""The learned scheduler setting eta every round in XGBoost's scikit-learn API.

``XGBClassifier`` (depth 3) on scikit-learn's bundled digits (offline, 10 classes),
150 rounds on CPU. The estimator's ``learning_rate`` is the initial eta; the callback
reads the multi-class log-loss and error of ``eval_set`` after every round and the agent
re-decides eta every 10 rounds. A constant-eta fit is printed beside it. Run:

    python examples/xgboost_sklearn.py
"""

import xgboost as xgb
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lrgym.integrations.xgboost_callback import XGBoostPolicyCallback

ROUNDS, K = 150, 10


def main() -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=0)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0)
    settings = {
        "n_estimators": ROUNDS,
        "learning_rate": 0.3,  # the initial eta; the agent takes it from here
        "max_depth": 3,
        "eval_metric": ["mlogloss", "merror"],  # loss first; 1 - merror becomes the val metric
        "n_jobs": 1,
        "random_state": 0,
    }
    callback = XGBoostPolicyCallback(total_rounds=ROUNDS, decision_interval=K)
    model = xgb.XGBClassifier(**settings, callbacks=[callback])
    # the first eval_set entry is read as the training loss, the last as validation
    model.fit(x_train, y_train, eval_set=[(x_train, y_train), (x_val, y_val)], verbose=False)
    for start in range(0, ROUNDS, 3 * K):
        print(f"rounds {start + 1:3d}-{start + K:3d}  eta {callback.etas[start]:.3g}")

    constant = xgb.XGBClassifier(**settings).fit(x_train, y_train)
    print(
        f"test accuracy: learned eta {model.score(x_test, y_test):.3f}, "
        f"constant eta {constant.score(x_test, y_test):.3f}"
    )


if __name__ == "__main__":
    main()
