"""Library of the Wikipedia dump to character-level language model pipeline.

One module per stage: dump (find and download), multistream (the bzip2
stream layout), wikitext (markup to plain text), extract (pages to articles),
shards (Parquet dataset), vocabulary, model, train, sample and report.
Nothing here imports Luigi: the tasks package wires these functions together.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that spin while they wait make torch's CPU training collapse
# when another process shares the cores: on a busy 2-core machine a 2x128 LSTM
# fell from about 55,000 to under 1,000 characters per second. Waiting
# passively avoids that. OpenMP reads this when torch loads it, so it is set
# here, before any stage imports torch; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
