"""Library of the Wikipedia dump to character-level language model pipeline.

One module per stage: dump (find and download), multistream (the bzip2
stream layout), wikitext (markup to plain text), extract (pages to articles),
shards (Parquet dataset), vocabulary, model, train, sample and report.
Nothing here imports Luigi: the tasks package wires these functions together.
"""

__version__ = "0.1.0"
