"""Protocols as BPMN 2.0: export a protocol as a diagram that bpmn.io and Camunda Modeler open, and import a
diagram drawn in the documented subset (docs/bpmn.md) as a protocol the engine runs.

* ``export.export_bpmn`` writes one pool per track (and per other process kind) with diagram interchange.
* ``importing.import_bpmn`` reads such a file back (or one drawn by hand) and refuses what is outside the
  subset, naming the element, what is not supported and what to use instead.
"""

from __future__ import annotations

from protocols.bpmn.export import export_bpmn
from protocols.bpmn.importing import BpmnImportError, import_bpmn

__all__ = ["BpmnImportError", "export_bpmn", "import_bpmn"]
