"""The edge daemon behind ``gridctl run``: an asyncio shell around the pure controller core.

Each poll period runs fixed phases (read one consistent snapshot, decide, write clamped and
expiring setpoints with heartbeats, record). A failing device or stage sets its own fault and
the cycle goes on; the MILP re-plans in a worker with a deadline that the cycle never waits on.
"""
