"""The comparison harness: every (task, scheduler, seed, initial LR) as a plain loop.

* :mod:`~lrgym.harness.compare`: run specs, grids, process pools (``lrgym compare``).
* :mod:`~lrgym.harness.results_store`: the durable results journal, resumable runs.
* :mod:`~lrgym.harness.measures`, :mod:`~lrgym.harness.report`,
  :mod:`~lrgym.harness.plots`: what the runs measured, as tables and plots.
* :mod:`~lrgym.harness.calibrate`: ``lrgym calibrate`` (a task's target).
* :mod:`~lrgym.harness.check`: ``lrgym check`` (a task's contract).
* :mod:`~lrgym.harness.finetune`: fine-tuning meta-learned inits on meta-test tasks.

Stands above the controllers and the meta-init families, and imports them and every
wing below; only the training wing (``lrgym.agents``) and the command line import it.
"""
