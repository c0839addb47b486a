"""Shipped agents (installed as ``lrgym.trained_agents``): one directory per agent."""
