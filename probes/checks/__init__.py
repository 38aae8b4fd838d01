"""Checks of the attributions themselves: faithfulness and sanity.

Do they rank what the heads use (`faithfulness`: deletion and insertion curves), and do they
change when the model's weights are randomised (`sanity`)? Built on `probes.methods`.
"""
