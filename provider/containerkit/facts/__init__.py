"""Facts more than one layer reads (the bottom layer, beside ``containerkit.errors``).

A fact the spec, a renderer and the policy all need (the Pod Security Standards capability sets, the
annotation that suppresses rules) lives here once, so no lower layer has to import a higher one to
read it. Nothing here imports the rest of containerkit.
"""
