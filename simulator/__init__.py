"""Monte Carlo simulation of a rollout plan: `rollout simulate` (docs/simulate.md).

SimPy drives the plan graph once for thousands of runs whose state is numpy
arrays; each gate draws what it reads per window and per arm, never per
request, and decides through the statistics kernel's own rules
(:mod:`rolloutlang.stats`).  One module per job:

    model     what is simulated: phases, gates, rules, traffic, defaults; a scenario's changes over time
    timeline  a run's schedule (shared by the runs that waited alike) and the traffic over it
    signals   draws per window: request counts, latency percentiles, errors, drift histograms
    labels    a business gate's labelled data at a look, expected and drawn
    gates     each gate judged in many runs at once, with the kernel's rules
    engine    the SimPy processes: looks, rules, confirmation waits, approvals, phases
    runner    scenarios, chunks, seeds and worker processes
    results   rates with their standard errors, exposure, times: the JSON document
    promises  budgets and declared power against the simulation (`--strict`)
    text      the table for the terminal and for `rollout explain --simulate`
    report    the self-contained HTML page

Nothing here is imported by `rollout check`: the CLI loads it only to simulate.
"""
