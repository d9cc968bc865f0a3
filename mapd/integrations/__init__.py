"""Bridges from MAP-D to other libraries (cleanlab's Datalab, ...): each module imports its library only when imported itself."""
