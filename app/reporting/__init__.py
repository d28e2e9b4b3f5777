"""Dashboards and period reports over the record store (``escalations`` and ``escalation_events``)."""
