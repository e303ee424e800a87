"""Realistic sample time series for trying the mesh out: generated here
(``series``), loaded through the public API (``loader``). Used by
``./mesh sample-data`` and by the web app's sample-data form."""
