"""Fault injection for the escalation engine, on real components the harness starts itself.

* ``components``: a Temporal dev server on a database file, the worker as a separate process, a PostgreSQL
  cluster and an SMTP catcher, each of which can be stopped, killed and started again on the same port.
* ``driver``: escalations driven through many actions by the client's updates, retried while a component
  is down or the escalation answers ``Busy``.
* ``checks``: once every fault is cleared, waits until everything has settled and finds lost or
  duplicated events, duplicated mail the crash window does not explain, stuck escalations and histories
  that no longer replay.
* ``scenario``: puts them together; used by ``tests/test_faults.py`` and ``benchmarks/fault_soak.py``.
"""
