"""The message path: a claimed message (``turn.Turn``) goes through small steps in order
(``steps.STEPS``), each reading and writing through one storage interface (``storage``).
docs/pipeline.md draws the path. No Django signals, no views, consumers or tasks imported here
(tasks import the pipeline, not the other way round).
"""
