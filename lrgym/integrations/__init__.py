"""Adapters that plug lrgym schedulers into other training stacks."""
