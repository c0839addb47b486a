"""The comparison harness: every (task, scheduler, seed, initial LR) as a plain loop.

* :mod:`~lrgym.harness.compare`: run specs, grids, process pools (``lrgym compare``).
* :mod:`~lrgym.harness.results_store`: the durable results journal, resumable runs.
* :mod:`~lrgym.harness.measures`, :mod:`~lrgym.harness.report`,
  :mod:`~lrgym.harness.plots`: what the runs measured, as tables and plots.
* :mod:`~lrgym.harness.calibrate`: ``lrgym calibrate`` (a task's target).
* :mod:`~lrgym.harness.check`: ``lrgym check`` (a task's contract).
* :mod:`~lrgym.harness.finetune`: fine-tuning meta-learned inits on meta-test tasks.

The top of the library: imports the controllers, the meta-init families and every wing
below them; only the command line, the training wing and the apps above import it.
"""
