"""Batch work over whole photo libraries, above the codec's door (``app.codec.api``).

``convert``: ``hyperthumb convert SRC DST``, a folder tree mirrored into HyperThumbnails, resumable
(a SQLite journal in DST), with worker processes. Never imported by the viewer's window process.
"""
