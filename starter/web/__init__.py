"""The web front door: pages, the JSON API and sign-in over the application layer (``app``)."""
