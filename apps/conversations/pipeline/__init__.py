"""The message path, as small steps that call each other explicitly:

accept → claim → session → commands → generate → deliver. No Django signals, no views, consumers
or tasks imported here (tasks import the pipeline, not the other way round).
"""
