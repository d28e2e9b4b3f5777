"""The escalation workflow's names that its callers need without importing the workflow: its type and the
task queue it runs on (``workflows.escalation`` re-exports both). Nothing here imports temporalio, so a
command that only names the queue stays light."""

from __future__ import annotations

TASK_QUEUE = "escalations"
WORKFLOW_TYPE = "EscalationWorkflow"
"""Clients start it by name: its handlers take raw payloads (see ``workflows.escalation``'s docstring)."""
