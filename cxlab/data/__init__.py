"""Data: raw extracts -> checked tables -> analysis tables.

``sources`` reads files or engine tables, ``validate`` checks the data contract, ``panel`` builds
the respondent table and counting-process rows with their exclusion flow, ``panelcache`` shares
one panel between a run's notebooks, ``audit`` summarises the flow, ``synth`` writes the demo study.
"""
