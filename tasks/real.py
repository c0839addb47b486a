"""The real-world task suite (split ``"real"``): registered on ``import lrgym``.

Each task reads its data on demand from a default source (a Hugging Face hub id, or
the canonical URL where the hub has no canonical copy) and takes any local copy
instead: ``lrgym.make_task("lrgym/TitanicMLP-v0", source="data/titanic.csv")``, or
register a variant for the CLI::

    lrgym.register_task(
        id="mylab/CIFAR10SmallCNN-v0",
        entry_point="lrgym.tasks.vision:cifar10_small_cnn",
        kwargs={"source": "data/cifar10", "subset": 5000},
    )

Real tasks are never meta-trained on, and they stay out of the offline ``held-out``
suite (``--tasks real`` selects them). Text tasks register in :mod:`lrgym.tasks.text`.
"""

from lrgym.core.registration import register_task

REAL_TASKS = {
    "CIFAR10SmallCNN-v0": "lrgym.tasks.vision:cifar10_small_cnn",
    "CIFAR10ResNet18-v0": "lrgym.tasks.vision:cifar10_resnet18",
    "MNISTCNN-v0": "lrgym.tasks.vision:mnist_cnn",
    "FashionMNISTCNN-v0": "lrgym.tasks.vision:fashion_mnist_cnn",
    "TitanicMLP-v0": "lrgym.tasks.tabular:titanic_mlp",
    "TitanicXGB-v0": "lrgym.tasks.tabular:titanic_xgb",
    "ETTh1LSTM-v0": "lrgym.tasks.timeseries:etth1_lstm",
}
"""Entry points of the real tasks by id (without the ``lrgym/`` namespace)."""

for _name, _entry_point in REAL_TASKS.items():
    register_task(id=f"lrgym/{_name}", entry_point=_entry_point)
