"""Enrichment: what the enrich stage uses to title, summarise, chapter and pick clips.

``sentences`` split the transcript, ``keywords`` and ``loudness`` are signals, ``heuristic`` is the offline
enricher, ``llm`` the OpenAI-compatible client and ``llm_enrich`` the LLM enricher; ``clip_rules`` are the rules
every clip obeys, whoever picked it."""
