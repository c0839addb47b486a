"""Importing this module registers the offline ``digits`` family's meta-test tasks.

For the command line without ``--init`` (e.g. the random-init baseline)::

    lrgym --import lrgym.meta_init.builtin_tasks compare --tasks meta-init-digits ...
"""

from lrgym.meta_init.tasks import register_meta_test_tasks

register_meta_test_tasks("digits")
