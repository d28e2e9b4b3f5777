"""The application layer every front door calls (``app.service.Application``): who you are (``identity``),
what you may see (``access``), bounded inputs (``inputs``), raise, act, read and list, and the audit log."""
