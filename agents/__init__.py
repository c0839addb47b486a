"""Meta-training of learned controllers (installed as ``lrgym.agents``)."""
