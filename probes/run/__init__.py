"""Running probes: the registry, the report's suite, shards, and fanning out.

The registry of probe families under one signature (`registry`), the report's suite with its
saved results and stage timings (`suite`), shards of the samples that merge exactly to the
unsharded run (`shards`), and fanning shards out to processes, devices or Ray (`fanout`).
"""
