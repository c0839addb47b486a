"""Shipped agents (installed as ``lrgym.trained_agents``): one directory per agent, a
shipped package of data only (see :mod:`lrgym.io.shipped`)."""
