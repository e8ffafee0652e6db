"""Raw events: the schema (shared with reports) and the recorder that writes Parquet shards."""
