"""Monte Carlo simulation of a rollout plan (traffic, delayed labels, gates, rules).

The simulator shares ``rolloutlang.stats`` with the power check; it lands with
the simulation issue.
"""
