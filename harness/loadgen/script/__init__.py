"""Conversation scripts (``--script``): parse (:mod:`.parse`), model (:mod:`.model`), run
(:mod:`.runner`) named, weighted scenarios of say / waitForReply… steps."""
