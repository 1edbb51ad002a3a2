"""The checks behind ``autodag.testing.check_op``, one concern per module (private).

``testing`` is the public face; ``run`` checks one sample by calling the check modules
in order, each a function of a ``case.Case`` (one sample of one op being checked).
"""
