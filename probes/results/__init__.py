"""What a probe returns, how it is judged, and how it is kept.

The result types' shared parts (`result.ProbeResult`; `transfer`: the sharing result and
intervals over seeds), the statistics and the decision rule (`stats`), saving and loading bit
for bit (`resultio`, `atomic`), the fingerprint of what a result was computed from and the
store of saved results (`fingerprint`, `store`, `filenames`), the named random streams and the
one rule for which stream a probe family draws (`seeds`), and plain text for tables and maps
(`text`, `textmaps`). Imports nothing else of `probes`, and never TensorFlow at import.
"""
