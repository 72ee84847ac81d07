"""Compliance outputs: a visible watermark, CENC-encrypted MP4, and signed manifests that
``faceveil verify`` checks (which file was anonymized, when, how, and that it is unchanged)."""
