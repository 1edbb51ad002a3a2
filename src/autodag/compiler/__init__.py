"""The compiler: a plan's passes as data (``ir``), worked out by ``analysis`` and
printed as Python source by pure emitters; ``plan`` runs what they print."""
