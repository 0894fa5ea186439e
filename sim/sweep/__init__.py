"""Scenario sweeps: many simulations of one base site with parameters varied, run in parallel.

``spec`` (the sweep file), ``load`` (file -> cases), ``apply`` (case -> site), ``case`` (hash,
run, result), ``executors`` (serial, process pool, Dask), ``run`` (resumable run) and
``table`` (tidy table, plots). The CLI is ``gridctl sweep`` (:mod:`gridctl.cli.commands_sweep`).
"""
